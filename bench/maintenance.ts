// Rebuild and scrub throughput on image files, beside a plain program measured in the same run
// on the same files: for scrub, a sequential read of the members' data regions; for rebuild, a
// sequential read of the survivors' data regions that writes one of them to a fresh replacement
// file and syncs it, as a rebuild does. All figures count bytes read from members per second,
// so the ratio says how close the engine comes to the disks' (or page cache's) speed.

import { mkdtempSync, rmSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleArray } from '../src/engine/assemble.js';
import { createArray } from '../src/engine/create.js';
import { failDisk, rebuildArray } from '../src/engine/maintenance.js';
import { scrubArray } from '../src/engine/scrub.js';
import { DATA_OFFSET_BYTES } from '../src/format/layout.js';
import { MIB } from '../src/units.js';
import { MB_BYTES, sized, type Bench } from './measure.js';

const MEMBERS = 4;
const PLAIN_IO_BYTES = 4 * MIB;
// Issue 11's goal, as a ratio to the plain program.
const MAINTENANCE_GOAL = 0.7;

async function plainReadMbPerSecond(paths: string[], dataBytes: number): Promise<number> {
  const started = performance.now();
  await Promise.all(paths.map(async (path) => {
    const buf = Buffer.alloc(PLAIN_IO_BYTES);
    const handle = await open(path, 'r');
    try {
      for (let at = 0; at < dataBytes; at += buf.length) await handle.read(buf, 0, buf.length, DATA_OFFSET_BYTES + at);
    } finally {
      await handle.close();
    }
  }));
  return (paths.length * dataBytes) / MB_BYTES / ((performance.now() - started) / 1000);
}

/** Reads the survivors in step, writes the first one's data to `replacement`, syncs it: bytes read per second. */
async function plainRebuildMbPerSecond(survivors: string[], replacement: string, dataBytes: number): Promise<number> {
  const started = performance.now();
  const handles = await Promise.all(survivors.map((path) => open(path, 'r')));
  const target = await open(replacement, 'r+');
  const bufs = survivors.map(() => Buffer.alloc(PLAIN_IO_BYTES));
  try {
    for (let at = 0; at < dataBytes; at += PLAIN_IO_BYTES) {
      await Promise.all(handles.map((handle, i) => handle.read(bufs[i]!, 0, PLAIN_IO_BYTES, DATA_OFFSET_BYTES + at)));
      await target.write(bufs[0]!, 0, PLAIN_IO_BYTES, DATA_OFFSET_BYTES + at);
    }
    await target.datasync();
  } finally {
    for (const handle of [...handles, target]) await handle.close();
  }
  return (survivors.length * dataBytes) / MB_BYTES / ((performance.now() - started) / 1000);
}

export const benchMaintenance: Bench = async (report) => {
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-'));
  const DATA_BYTES = sized(256, 16) * MIB;
  const MEMBER_BYTES = DATA_OFFSET_BYTES + DATA_BYTES;
  const shape = `4x${DATA_BYTES / MIB}M`;
  try {
    const paths = Array.from({ length: MEMBERS + 1 }, (_, i) => join(dir, `m${i}.img`));
    await createArray({ level: 5, raidDevices: MEMBERS, paths: paths.slice(0, MEMBERS), chunkSizeBytes: 512 * 1024, createSizeBytes: MEMBER_BYTES, name: 'bench' });
    // Fill the array so reads are of real data, not holes.
    const filled = await assembleArray(paths.slice(0, MEMBERS));
    const block = Buffer.alloc(8 * MIB);
    for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
    for (let at = 0; at < filled.array.sizeBytes; at += block.length) await filled.array.write(at, block.subarray(0, Math.min(block.length, filled.array.sizeBytes - at)));
    await filled.array.close();
    await filled.release();

    const scrubReference = await plainReadMbPerSecond(paths.slice(0, MEMBERS), DATA_BYTES);
    const scrubbing = await assembleArray(paths.slice(0, MEMBERS));
    const scrub = await scrubArray(scrubbing.array, { restart: true });
    await scrubbing.array.close();
    await scrubbing.release();
    report({
      id: 'scrub-raid5', name: `scrub (RAID-5, ${shape})`, figure: (MEMBERS * DATA_BYTES) / MB_BYTES / scrub.seconds, unit: 'MB/s',
      reference: { what: 'plain sequential read of the 4 members', figure: scrubReference, unit: 'MB/s' }, goal: MAINTENANCE_GOAL,
    });

    // The plain program and the rebuild each write a fresh sparse replacement file.
    const survivors = [paths[0]!, paths[1]!, paths[3]!];
    const plainReplacement = join(dir, 'plain-replacement.img');
    for (const path of [plainReplacement, paths[MEMBERS]!]) {
      await writeFile(path, '');
      await truncate(path, MEMBER_BYTES);
    }
    const rebuildReference = await plainRebuildMbPerSecond(survivors, plainReplacement, DATA_BYTES);
    const rebuilding = await assembleArray(paths.slice(0, MEMBERS));
    await failDisk(rebuilding, paths[2]!, false);
    const [outcome] = await rebuildArray(rebuilding, { replacementPath: paths[MEMBERS] });
    await rebuilding.array.close();
    await rebuilding.release();
    report({
      id: 'rebuild-raid5', name: `rebuild (RAID-5, ${shape})`, figure: ((MEMBERS - 1) * DATA_BYTES) / MB_BYTES / outcome!.seconds, unit: 'MB/s',
      reference: { what: 'plain read of 3 survivors + write of the replacement + sync', figure: rebuildReference, unit: 'MB/s' }, goal: MAINTENANCE_GOAL,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
