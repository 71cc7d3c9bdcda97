// Proves: a reader that finds a dead daemon's registry record removes it, but never removes the
// record a new daemon (a standby taking over) writes in its place while the reader looks. The
// race the test drives: readers poll while the stale record is replaced by a live one; the live
// one must survive every round. Without the registry lock's compare-and-remove, a reader that
// read the stale record deletes the new one (the standby then serves, unseen by the CLI).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRegistry, registryPath, removeOwnRegistry, writeRegistry, type DaemonRecord } from '../../src/daemon/registry.js';
import { leasePath, readLease, removeOwnLease, writeLease } from '../../src/daemon/fence.js';

const UUID = '2f0c1a2b-0000-4000-8000-0000000000aa';
const ROUNDS = 100;
const READERS = 4;

let dir: string;
let savedRunDir: string | undefined;
beforeEach(() => {
  // tmpfs where there is one: its fsync is free, so the new record lands while readers still
  // hold the stale one (the window a standby's takeover opens), not milliseconds later.
  dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'jraid-registry-'));
  savedRunDir = process.env.JRAID_RUN_DIR;
  process.env.JRAID_RUN_DIR = dir;
});
afterEach(() => {
  if (savedRunDir === undefined) delete process.env.JRAID_RUN_DIR;
  else process.env.JRAID_RUN_DIR = savedRunDir;
  rmSync(dir, { recursive: true, force: true });
});

function record(pid: number, startedAt: string): DaemonRecord {
  return { uuid: UUID, name: 'r5', pid, controlSocket: join(dir, `${UUID}.sock`), nbd: [], log: null, toughness: 'atomic', startedAt };
}

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const child = spawnSync('true');
  return child.pid!;
}

describe('registry: stale records', () => {
  it('a stale record is removed by the reader that finds it', async () => {
    await writeRegistry(record(deadPid(), '2026-01-01T00:00:00.000Z'));
    expect(await readRegistry(UUID)).toBeUndefined();
    expect(existsSync(registryPath(UUID)), 'the stale file is gone').toBe(false);
  });

  it('a new daemon\'s record written while readers remove the stale one survives every round', async () => {
    const dead = deadPid();
    let lost = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await writeRegistry(record(dead, `stale-${round}`));
      // The new record's write starts first; readers join it a varying number of event-loop
      // turns later, so across rounds their reads of the stale record land just before its
      // rename and their removals just after.
      const written = writeRegistry(record(process.pid, `live-${round}`));
      for (let turn = 0; turn < round % 12; turn++) await new Promise((done) => setImmediate(done));
      let stop = false;
      const readers = Array.from({ length: READERS }, async () => {
        while (!stop) await readRegistry(UUID);
      });
      await written;
      // Let the readers that read the stale record before the write finish their removal.
      await new Promise((done) => setTimeout(done, 2));
      stop = true;
      await Promise.all(readers);
      if ((await readRegistry(UUID))?.startedAt !== `live-${round}`) lost++;
    }
    expect(lost, `rounds (of ${ROUNDS}) whose live record a reader removed`).toBe(0);
  });

  it('a daemon removes its own record and leaves another daemon\'s', async () => {
    await writeRegistry(record(process.pid, 'mine'));
    await removeOwnRegistry(UUID, process.pid + 1);
    expect((await readRegistry(UUID))?.startedAt, 'another pid does not remove it').toBe('mine');
    await removeOwnRegistry(UUID, process.pid);
    expect(existsSync(registryPath(UUID))).toBe(false);
  });

  it('a daemon that stops removes the lease only while it still names it (a standby\'s claim stays)', async () => {
    await writeLease(UUID, { pid: process.pid + 1, claimedFrom: process.pid });
    await removeOwnLease(UUID, process.pid);
    expect((await readLease(UUID))?.record.pid, 'the claim stays').toBe(process.pid + 1);
    await writeLease(UUID, { pid: process.pid });
    await removeOwnLease(UUID, process.pid);
    expect(existsSync(leasePath(UUID))).toBe(false);
  });
});
