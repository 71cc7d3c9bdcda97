// Journal benches. (1) Recovery after a crash with 64 dirty stripes on an 8 GiB array (sparse
// images), beside a full resync of the same array in the same run: what the journal saves.
// (2) Journal record writes per user write with many concurrent writers: the group commit.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleArray } from '../src/engine/assemble.js';
import { createArray, resyncStripes } from '../src/engine/create.js';
import { MemberJournalStore } from '../src/journal/store.js';
import { encodeJournalRecord } from '../src/format/journal-record.js';
import { Rng } from '../src/rng.js';
import { GIB, MIB } from '../src/units.js';
import type { Bench } from './measure.js';

const MEMBERS = 4;
const MEMBER_BYTES = Math.ceil((8 * GIB) / (MEMBERS - 1)) + 8 * MIB;

export const benchRecovery: Bench = async (report) => {
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-'));
  try {
    const paths = Array.from({ length: MEMBERS }, (_, i) => join(dir, `m${i}.img`));
    await createArray({ level: 5, raidDevices: MEMBERS, paths, chunkSizeBytes: 512 * 1024, createSizeBytes: MEMBER_BYTES, name: 'bench' });
    // A crash with 64 stripes in flight: a dirty record listing them (their data written first).
    const crashed = await assembleArray(paths);
    const { array } = crashed;
    const rng = new Rng(64);
    const stripes = new Set<number>();
    while (stripes.size < 64) stripes.add(rng.int(array.geometry.stripeCount));
    for (const stripe of stripes) await array.write(stripe * array.geometry.stripeDataBytes, rng.bytes(array.geometry.stripeDataBytes));
    const store = new MemberJournalStore(array);
    const generation = (array.journalRecord?.generation ?? 0) + 1000;
    await store.writeRecord(generation, encodeJournalRecord({ arrayUuid: array.sb.arrayUuid, generation, clean: false, entries: [...stripes].map((stripe) => ({ volumeId: 1, stripe, checks: [] })) }));
    await array.abandon();
    await crashed.release();

    const started = performance.now();
    const recovered = await assembleArray(paths);
    const recoverMs = performance.now() - started;
    const outcome = recovered.report.recovery;
    if (!outcome || !('stripes' in outcome) || outcome.stripes.length !== 64) throw new Error('recovery did not see the 64 dirty stripes');
    const resyncStarted = performance.now();
    await resyncStripes(recovered.array.geometry, (role) => recovered.array.writableDisk(role)!, 0, recovered.array.geometry.stripeCount);
    await recovered.array.flushMembers();
    const resyncMs = performance.now() - resyncStarted;
    await recovered.array.close();
    await recovered.release();
    // A ratio below 1 is the saving: recovery takes this fraction of a full resync's time.
    report({
      id: 'journal-recover-64-stripes', name: `recover 64 dirty stripes (${(recovered.array.sizeBytes / GIB).toFixed(1)} GiB array)`, figure: recoverMs, unit: 'ms',
      reference: { what: 'full resync of the same array', figure: resyncMs, unit: 'ms' },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

export const benchGroupCommit: Bench = async (report) => {
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-'));
  try {
    const paths = Array.from({ length: MEMBERS }, (_, i) => join(dir, `m${i}.img`));
    await createArray({ level: 5, raidDevices: MEMBERS, paths, chunkSizeBytes: 64 * 1024, createSizeBytes: 260 * MIB, name: 'bench' });
    for (const writers of [1, 8, 32]) {
      const opened = await assembleArray(paths);
      const { array } = opened;
      const rng = new Rng(writers);
      const writesPerWriter = Math.ceil(2048 / writers);
      const started = performance.now();
      await Promise.all(Array.from({ length: writers }, async () => {
        for (let i = 0; i < writesPerWriter; i++) await array.write(rng.int(array.sizeBytes / 4096) * 4096, rng.bytes(4096));
      }));
      const seconds = (performance.now() - started) / 1000;
      const stats = array.journal!.stats;
      const userWrites = writers * writesPerWriter;
      await array.close();
      await opened.release();
      report({
        id: `journal-records-per-1000-writes-${writers}`, name: `journal records per 1000 writes, ${writers} writer(s)`, figure: (1000 * stats.recordsWritten) / userWrites, unit: 'records',
        reference: { what: `one record per write (${(userWrites / seconds).toFixed(0)} writes/s here)`, figure: 1000, unit: 'records' },
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
