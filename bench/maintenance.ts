// Rebuild and scrub throughput on image files, beside a plain sequential read of the same
// members' data regions measured in the same run. All figures count bytes read from members
// per second, so the ratio says how close the engine comes to the disks' (or page cache's) speed.

import { mkdtempSync, rmSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleArray } from '../src/engine/assemble.js';
import { createArray } from '../src/engine/create.js';
import { failDisk, rebuildArray } from '../src/engine/maintenance.js';
import { scrubArray } from '../src/engine/scrub.js';
import { MIB } from '../src/units.js';
import { MB_BYTES, type Bench } from './measure.js';

const MEMBER_BYTES = 260 * MIB;
const DATA_BYTES = 256 * MIB;
const MEMBERS = 4;

async function plainReadMbPerSecond(paths: string[]): Promise<number> {
  const started = performance.now();
  const buf = Buffer.alloc(4 * MIB);
  await Promise.all(paths.map(async (path) => {
    const handle = await open(path, 'r');
    try {
      for (let at = 0; at < DATA_BYTES; at += buf.length) await handle.read(buf, 0, buf.length, 4 * MIB + at);
    } finally {
      await handle.close();
    }
  }));
  return (paths.length * DATA_BYTES) / MB_BYTES / ((performance.now() - started) / 1000);
}

export const benchMaintenance: Bench = async (report) => {
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-'));
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

    const scrubReference = await plainReadMbPerSecond(paths.slice(0, MEMBERS));
    const scrubbing = await assembleArray(paths.slice(0, MEMBERS));
    const scrub = await scrubArray(scrubbing.array, { restart: true });
    await scrubbing.array.close();
    await scrubbing.release();
    report({
      name: 'scrub (RAID-5, 4x256M)', figure: (MEMBERS * DATA_BYTES) / MB_BYTES / scrub.seconds, unit: 'MB/s',
      reference: { what: 'sequential read of the 4 members', figure: scrubReference, unit: 'MB/s' },
    });

    const survivors = [paths[0]!, paths[1]!, paths[3]!];
    const rebuildReference = await plainReadMbPerSecond(survivors);
    const rebuilding = await assembleArray(paths.slice(0, MEMBERS));
    await failDisk(rebuilding, paths[2]!, false);
    await writeFile(paths[MEMBERS]!, '');
    await truncate(paths[MEMBERS]!, MEMBER_BYTES);
    const [outcome] = await rebuildArray(rebuilding, { replacementPath: paths[MEMBERS] });
    await rebuilding.array.close();
    await rebuilding.release();
    report({
      name: 'rebuild (RAID-5, 4x256M)', figure: ((MEMBERS - 1) * DATA_BYTES) / MB_BYTES / outcome!.seconds, unit: 'MB/s',
      reference: { what: 'sequential read of the 3 survivors', figure: rebuildReference, unit: 'MB/s' },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
