// Proves journal space is bounded and a full journal makes writers wait, never fail: with the
// smallest data journal and many concurrent writes, writers are seen waiting for room (and
// detail says the journal is full), every write completes and reads back, and the journals end
// with nothing in flight.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { describeArray } from '../../src/app/describe.js';
import { Rng } from '../../src/rng.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('a full data journal', () => {
  it('makes writers wait for room; all writes complete and read back', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 3, chunkSizeBytes: 64 * 1024, policy: 'journal', dataJournalBytes: 256 * 1024 });
    // Flushes take a moment, as on a disk: the watcher below gets its turns meanwhile.
    for (const device of devices) {
      const flush = device.flush.bind(device);
      device.flush = async () => { await new Promise((resolve) => setTimeout(resolve, 1)); await flush(); };
    }
    const { array, report } = await assembleDevices(devices, {});
    const rng = new Rng(99);
    const shadow = await array.read(0, array.sizeBytes);
    const writes = Array.from({ length: 20 }, (_, i) => ({ offset: i * 100 * 1024, data: rng.bytes(100 * 1024) }));
    let sawFull = false;
    let sawDetailFull = false;
    let done = false;
    const watcher = (async () => {
      while (!done) {
        if ((array.dataJournal?.waitingForRoom ?? 0) > 0) {
          sawFull = true;
          sawDetailFull ||= describeArray(array, report).dataJournal?.full === true;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await Promise.all(writes.map((write) => array.write(write.offset, write.data)));
    done = true;
    await watcher;
    for (const write of writes) write.data.copy(shadow, write.offset);
    expect(sawFull).toBe(true);
    expect(sawDetailFull).toBe(true);
    expect(array.dataJournal!.stats.roomWaits).toBeGreaterThan(0);
    expect(array.dataJournal!.stats.checkpoints).toBeGreaterThan(1);
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    expect(array.dataJournal!.updatesInFlight).toBe(0);
    expect(describeArray(array, report).dataJournal).toMatchObject({ full: false, writersWaiting: 0, updatesInFlight: 0, sizeBytes: 256 * 1024 });
    await array.close();
  });
});
