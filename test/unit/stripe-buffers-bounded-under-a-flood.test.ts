// Proves: under a flood of concurrent writes the stripe buffers in flight stay within the arena's pool (STRIPE_BUFFER_POOL_BYTES): writers wait for room (backpressure, no failure), every member data write comes from a pooled buffer (no allocation past the bound), and every write lands.
import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '../../src/device/block-device.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { configureDefaultArena, defaultArena } from '../../src/memory/arena.js';
import { Rng } from '../../src/rng.js';
import { KIB, MIB } from '../../src/units.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

// A small pool, so a few dozen writes overrun it (this file's process has its own arena).
const POOL_BYTES = 4 * MIB;
configureDefaultArena({ poolBytes: POOL_BYTES });

/** Forwards to a member with a delay (writes stay in flight across turns of the event loop) and sorts its chunk-sized writes by where their buffer lives. */
class WatchedDevice implements BlockDevice {
  pooledWrites = 0;
  unpooledWrites = 0;
  constructor(private readonly inner: BlockDevice) {}
  get path(): string { return this.inner.path; }
  get sizeBytes(): number { return this.inner.sizeBytes; }
  async read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return this.inner.read(buf, offsetBytes);
  }
  async write(buf: Uint8Array, offsetBytes: number): Promise<void> {
    // Stripe writes of whole chunks (64 KiB); metadata writes are smaller and never pooled.
    if (buf.length >= 64 * KIB) {
      if (defaultArena().holds(buf)) this.pooledWrites++;
      else this.unpooledWrites++;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
    return this.inner.write(buf, offsetBytes);
  }
  writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> { return this.inner.writeDurable(buf, offsetBytes); }
  flush(): Promise<void> { return this.inner.flush(); }
  close(): Promise<void> { return this.inner.close(); }
}

describe('stripe buffers under a flood of writes', () => {
  it('wait for room in the pool instead of being allocated past it', async () => {
    const pool = defaultArena().pool;
    expect(pool.capacityBytes).toBe(POOL_BYTES);
    const members = (await makeMemoryMembers({ level: 6, raidDevices: 6, memberSizeBytes: 8 * MIB })).map((device) => new WatchedDevice(device));
    const { array } = await assembleDevices(members, { journal: { idleCleanMs: 0 } });
    const rng = new Rng(11);
    const writeBytes = 1 * MIB;
    const count = Math.floor(array.sizeBytes / writeBytes);
    const payloads = Array.from({ length: count }, () => rng.bytes(writeBytes));
    // Each 1 MiB write keeps up to 8 stripes of 6 x 64 KiB in flight: 3 MiB each, 24 MiB
    // asked for at once against a pool of 4 MiB.
    let waitersSeen = 0;
    let settled = false;
    const all = Promise.all(payloads.map((data, i) => array.write(i * writeBytes, data))).finally(() => { settled = true; });
    while (!settled) {
      waitersSeen = Math.max(waitersSeen, pool.setWaiters);
      expect(pool.inUseBytes).toBeLessThanOrEqual(POOL_BYTES);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await all;
    expect(waitersSeen, 'the flood reached the bound: writers waited for room').toBeGreaterThan(0);
    expect(members.reduce((sum, device) => sum + device.unpooledWrites, 0), 'stripe writes from buffers outside the pool').toBe(0);
    expect(members.reduce((sum, device) => sum + device.pooledWrites, 0)).toBeGreaterThan(0);
    expect(pool.oversizedSets).toBe(0);
    for (let i = 0; i < count; i++) expect((await array.read(i * writeBytes, writeBytes)).equals(payloads[i]!), `write ${i} reads back`).toBe(true);
    await array.close();
  });
});
