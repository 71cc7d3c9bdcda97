// Proves: the write path's stripe buffers are lent by the arena's pool and all given back once
// each write settles (also when a member write fails), so the steady state allocates none; and
// the NBD backend's read fills the server's reply buffer in place and resolves with it.
import { describe, expect, it } from 'vitest';
import { ArrayBackend } from '../../src/daemon/array-backend.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { defaultArena } from '../../src/memory/arena.js';
import { Rng } from '../../src/rng.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('stripe buffers', () => {
  it('come from the pool and go back after every write, including failed member writes', async () => {
    const pool = defaultArena().pool;
    for (const level of [5, 6] as const) {
      const members = await makeMemoryMembers({ level, raidDevices: level === 5 ? 4 : 5 });
      const faulty = members.map((device) => new FaultDevice(device, { latencyMs: 1 })); // latency: writes stay in flight across turns of the event loop
      const { array } = await assembleDevices(faulty, { journal: { idleCleanMs: 0 } });
      const rng = new Rng(level);
      // One write first: the write path's one scratch block is taken once, for good.
      await array.write(0, rng.bytes(4096));
      const inUseBefore = pool.inUseBytes;
      const lentBefore = pool.buffersInUse;
      let highWaterSeen = 0;
      for (let round = 0; round < 20; round++) {
        if (round === 10) faulty[1]!.plan.failWritesAfter = 0; // one member's writes fail from here: it is failed, writes go on degraded
        const length = 1 + rng.int(200_000);
        const offset = rng.int(array.sizeBytes - length);
        const writes = [array.write(offset, rng.bytes(length)), array.write(rng.int(array.sizeBytes - 4096), rng.bytes(4096))];
        let settled = false;
        const all = Promise.all(writes).finally(() => { settled = true; });
        while (!settled) {
          highWaterSeen = Math.max(highWaterSeen, pool.inUseBytes - inUseBefore);
          await new Promise((resolve) => setImmediate(resolve));
        }
        await all;
        expect(pool.inUseBytes, `round ${round}: every stripe buffer back`).toBe(inUseBefore);
        expect(pool.buffersInUse).toBe(lentBefore);
      }
      expect(highWaterSeen, 'writes in flight held pool buffers').toBeGreaterThan(0);
      await array.close();
    }
  });

  it('NBD reads fill the reply buffer the server hands in', async () => {
    const members = await makeMemoryMembers({ level: 5, raidDevices: 4 });
    const { array } = await assembleDevices(members, { journal: { idleCleanMs: 0 } });
    const data = new Rng(9).bytes(100_000);
    await array.write(12_288, data);
    const backend = new ArrayBackend(array, 'atomic');
    const target = Buffer.alloc(data.length, 0xee);
    const returned = await backend.read(12_288, data.length, target);
    expect(returned).toBe(target);
    expect(target.equals(data)).toBe(true);
    await array.close();
  });
});
