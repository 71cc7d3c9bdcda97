// Proves the journal policy's proxy manager (seed 002 claims 3, 19-21): a member that vanishes in
// the middle of concurrent writes is replaced by a proxy, the updates in flight are published to
// it and complete degraded; every acknowledged write reads back with no EIO, the write-intent map
// lists every stripe the member missed, and a partial re-add restores full redundancy.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareReAdd, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { describeArray } from '../../src/app/describe.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import type { Level } from '../../src/format/types.js';
import type { UnsafeProxySkip } from '../../src/engine/journal-proxy.js';
import { Rng } from '../../src/rng.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';
import { MIB } from '../../src/units.js';

const STREAMS = 6;
const WRITES_PER_STREAM = 14;

/** Concurrent writers (each in its own slice of the array); `victims` vanish one by one after some acknowledgements. */
async function failMidWrites(level: Level, raidDevices: number, victims: number[], seed: number) {
  const memories = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 16 * 1024, policy: 'journal' });
  const faults = memories.map((memory) => new FaultDevice(memory));
  const assembled = await assembleDevices(faults, {});
  const { array } = assembled;
  const shadow = await array.read(0, array.sizeBytes);
  const rng = new Rng(seed);
  const sliceBytes = Math.floor(array.sizeBytes / STREAMS);
  const failAfterAcks = victims.map((_, i) => 12 + 20 * i);
  let acks = 0;
  let vanished = 0;
  /** Stripes of writes begun after the first member vanished: the returning member missed them. */
  const missed = new Set<number>();
  await Promise.all(Array.from({ length: STREAMS }, async (_, stream) => {
    for (let i = 0; i < WRITES_PER_STREAM; i++) {
      const length = 1 + rng.int(40_000);
      const offset = stream * sliceBytes + rng.int(sliceBytes - length);
      const data = rng.bytes(length);
      if (vanished > 0) for (const extent of array.geometry.extents(offset, length)) missed.add(extent.stripe);
      await array.write(offset, data);
      data.copy(shadow, offset);
      acks++;
      if (vanished < victims.length && acks >= failAfterAcks[vanished]!) faults[victims[vanished++]!]!.dead = true;
    }
  }));
  return { faults, memories, assembled, array, shadow, missed };
}

/**
 * One 4 KiB write (one update) in each of 16 write-intent regions, all at once; the victim
 * vanishes at its `dieAtWrite`th device write, mid-way through them. Only the proxy then marks
 * the regions of the updates it was handed.
 */
async function failAmongSingleUpdates(victim: number, dieAtWrite: number, proxySkip: UnsafeProxySkip) {
  const memories = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 16 * 1024, policy: 'journal', memberSizeBytes: 20 * MIB });
  const faults = memories.map((memory) => new FaultDevice(memory));
  const assembled = await assembleDevices(faults, {});
  const { array } = assembled;
  array.journalWriterForTests!.unsafeProxySkip = proxySkip;
  await array.write(0, Buffer.alloc(1)); // the session's first write (superblock commits) out of the way
  await array.flush();
  const shadow = await array.read(0, array.sizeBytes);
  const device = faults[victim]!;
  const write = device.write.bind(device);
  let writes = 0;
  device.write = (buf, offsetBytes) => {
    if (++writes === dieAtWrite) device.dead = true;
    return write(buf, offsetBytes);
  };
  const regionArrayBytes = array.sb.writeIntentChunkBytes * array.geometry.dataDisks;
  const rng = new Rng(dieAtWrite);
  await Promise.all(Array.from({ length: 16 }, async (_, region) => {
    const offset = region * regionArrayBytes + 4096 * rng.int(regionArrayBytes / 4096);
    const data = rng.bytes(4096);
    await array.write(offset, data);
    data.copy(shadow, offset);
  }));
  return { faults, assembled, array, shadow };
}

describe('journal policy: a failed member is replaced by a proxy', () => {
  for (const [level, raidDevices, victims] of [[5, 4, [2]], [6, 5, [1, 3]]] as [Level, number, number[]][]) {
    it(`RAID-${level}: ${victims.length} member(s) vanish mid-write; writes complete degraded, the marks cover what they missed, re-add restores redundancy`, async () => {
      const { faults, memories, assembled, array, shadow, missed } = await failMidWrites(level, raidDevices, victims, level * 101);
      // Every write was acknowledged (none failed) and reads back, degraded, with no EIO.
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      expect(array.degradedRoles()).toEqual(victims.map((index) => array.sb.members[index]!.role).sort());
      // A proxy serves each failed role; the updates in flight at the failure were published to it.
      const proxies = array.journalProxies;
      expect(proxies.map((proxy) => proxy.memberIndex).sort()).toEqual([...victims].sort());
      expect(proxies.reduce((sum, proxy) => sum + proxy.stats.published, 0)).toBeGreaterThan(0);
      expect(proxies.reduce((sum, proxy) => sum + proxy.stats.sidesTaken, 0)).toBeGreaterThan(0);
      // The write-intent map lists every stripe written since the first failure, and all the proxies marked.
      expect(missed.size).toBeGreaterThan(0);
      for (const stripe of missed) expect(array.writeIntent.isStripeMarked(stripe)).toBe(true);
      for (const proxy of proxies) for (const stripe of proxy.stripesMarked) expect(array.writeIntent.isStripeMarked(stripe)).toBe(true);
      // detail shows each proxy.
      const shown = describeArray(array, assembled.report).dataJournal!.proxies;
      expect(shown.map((proxy) => proxy.path).sort()).toEqual(victims.map((index) => faults[index]!.path).sort());
      expect(shown.every((proxy) => proxy.stripesMarked > 0 && proxy.published + proxy.served > 0)).toBe(true);
      // The members come back: a partial re-add rebuilds the marked regions only.
      for (const victim of victims) {
        faults[victim]!.dead = false;
        const plan = await prepareReAdd(assembled, faults[victim]!.path);
        expect(plan.mode).toBe('partial');
        await runRebuild(array, plan.index);
      }
      expect(array.degradedRoles()).toEqual([]);
      expect(array.journalProxies).toEqual(array.journalProxies.filter((proxy) => !victims.includes(proxy.memberIndex)));
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      expect((await scrubArray(array, { restart: true })).mismatches).toEqual([]);
      await array.close();
      // Full redundancy: without any one member, everything reads back.
      for (let gone = 0; gone < raidDevices; gone++) {
        const { array: degraded } = await assembleDevices(memories.filter((_, i) => i !== gone), { readOnly: true });
        expect((await degraded.read(0, degraded.sizeBytes)).equals(shadow), `without member ${gone}`).toBe(true);
        await degraded.close();
      }
    });
  }

  it('a proxy retires once its member is back: another member failing next is served, not taken for a second loss', async () => {
    const memories = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 16 * 1024, policy: 'journal' });
    const assembled = await assembleDevices(memories, {});
    const { array } = assembled;
    await array.write(0, Buffer.alloc(50_000, 1));
    await failDisk(assembled, memories[2]!.path, false);
    await array.write(100_000, Buffer.alloc(50_000, 2));
    await runRebuild(array, (await prepareReAdd(assembled, memories[2]!.path)).index);
    await failDisk(assembled, memories[0]!.path, false);
    await array.write(200_000, Buffer.alloc(50_000, 3));
    expect(array.journalProxies.map((proxy) => proxy.memberIndex)).toEqual([0]);
    for (const [offset, fill] of [[0, 1], [100_000, 2], [200_000, 3]]) expect((await array.read(offset!, 50_000)).equals(Buffer.alloc(50_000, fill))).toBe(true);
    await array.close();
  });

  for (const proxySkip of ['none', 'drop-published'] as const) {
    it(`the updates in flight at the failure are published and marked${proxySkip === 'none' ? '' : ': a proxy that drops them is caught'}`, async () => {
      const { faults, assembled, array, shadow } = await failAmongSingleUpdates(2, 10, proxySkip);
      expect(array.journalProxies[0]!.stats.sidesTaken).toBeGreaterThan(0);
      faults[2]!.dead = false;
      await runRebuild(array, (await prepareReAdd(assembled, faults[2]!.path)).index);
      // Dropped, the stripes the member missed are not rebuilt: its stale copies read back, and scrub finds them.
      const readsBack = (await array.read(0, array.sizeBytes)).equals(shadow);
      const consistent = (await scrubArray(array, { restart: true })).mismatches.length === 0;
      expect(readsBack && consistent).toBe(proxySkip === 'none');
      await array.close();
    });
  }
});
