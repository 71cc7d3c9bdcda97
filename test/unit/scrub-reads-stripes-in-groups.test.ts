// Proves: scrub reads consecutive stripes in groups, one read per member per group (a member
// holds consecutive stripes' chunks back to back), and still finds every mismatch, in stripe
// order, at group boundaries and inside a group; a read error inside a group makes that group
// fall back to stripe-by-stripe reads, which fail with E_IO naming the stripe, or with --repair
// rebuild the unreadable block and still check (and repair) the group's other stripes. Scrub
// and rebuild give back every buffer they were lent by the pool, also when they fail.
import { describe, expect, it } from 'vitest';
import { FaultDevice } from '../../src/device/fault-device.js';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { defaultArena } from '../../src/memory/arena.js';
import { KIB, MIB } from '../../src/units.js';
import { cloneDevices, fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

const DATA_OFFSET = 4 * MIB;
const CHUNK = 64 * KIB;
const STRIPES = 48;
// Scrub reads up to 1 MiB per member read: 16 stripes of 64 KiB chunks per group.
const GROUP = 16;

/** Counts reads of the data area, and can fail reads of chosen ranges. */
class CountingDevice extends FaultDevice {
  dataReads = 0;
  override read(buf: Uint8Array, offsetBytes: number): Promise<void> {
    if (offsetBytes >= DATA_OFFSET) this.dataReads++;
    return super.read(buf, offsetBytes);
  }
}

async function filledMembers(level: 5 | 6): Promise<{ devices: MemoryDevice[]; shadow: Buffer }> {
  const raidDevices = level === 6 ? 5 : 4;
  const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: CHUNK, memberSizeBytes: DATA_OFFSET + STRIPES * CHUNK });
  const setup = await openMemoryArray(devices);
  expect(setup.geometry.stripeCount).toBe(STRIPES);
  const shadow = await fillRandom(setup, 17, 120);
  await setup.close();
  return { devices, shadow };
}

/** Flips bytes in the second block of `role`'s chunk of `stripe`. */
function corrupt(device: MemoryDevice, stripe: number): void {
  const at = DATA_OFFSET + stripe * CHUNK + 4096 + 10;
  for (let i = 0; i < 40; i++) device.bytes[at + i]! ^= 0xa5;
}

describe('scrub reads stripes in groups', () => {
  it('one read per member per group, every mismatch found in order', async () => {
    const { devices } = await filledMembers(5);
    const copies = cloneDevices(devices);
    // Mismatches on both sides of a group boundary and inside the next group.
    for (const stripe of [GROUP - 1, GROUP, GROUP + 4]) corrupt(copies[stripe % 4]!, stripe);
    const counting = copies.map((device) => new CountingDevice(device));
    const { array } = await assembleDevices(counting);
    const poolInUse = defaultArena().pool.inUseBytes;
    for (const device of counting) device.dataReads = 0;
    const progress: number[] = [];
    const outcome = await scrubArray(array, { restart: true, onProgress: ({ doneBytes }) => progress.push(doneBytes) });
    expect(outcome.mismatches.map((m) => m.stripe)).toEqual([GROUP - 1, GROUP, GROUP + 4]);
    expect(outcome.stripesChecked).toBe(STRIPES);
    for (const device of counting) expect(device.dataReads).toBe(STRIPES / GROUP);
    // Progress counts whole groups done, in order, up to the whole array.
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(array.sizeBytes);
    expect(defaultArena().pool.inUseBytes).toBe(poolInUse);
    await array.close();
  });

  it('a read error inside a group: E_IO naming the stripe, or with --repair the block rebuilt and the group still checked', async () => {
    const { devices, shadow } = await filledMembers(6);
    const badStripe = GROUP + 1;
    const corruptStripe = GROUP + 5;
    const copies = cloneDevices(devices);
    const probe = await assembleDevices(cloneDevices(devices));
    // A data chunk of another stripe of the same group is corrupt: RAID-6 names and fixes it.
    const corruptRole = probe.array.geometry.stripeMap(corruptStripe).dataRoles[1]!;
    await probe.array.close();
    corrupt(copies[corruptRole]!, corruptStripe);
    const faulty = copies.map((device) => new CountingDevice(device));
    const badRole = 2;
    const badAt = DATA_OFFSET + badStripe * CHUNK + 8192;
    faulty[badRole]!.addBadRange(badAt, badAt + 4096);
    const { array } = await assembleDevices(faulty);
    const poolInUse = defaultArena().pool.inUseBytes;

    const failed = await scrubArray(array, { restart: true }).catch((error: unknown) => error);
    expect(failed).toMatchObject({ code: 'E_IO' });
    expect(String((failed as Error).message)).toContain(`stripe ${badStripe}:`);
    expect(defaultArena().pool.inUseBytes).toBe(poolInUse);

    const repaired = await scrubArray(array, { restart: true, repair: true });
    expect(repaired.mismatches).toEqual([expect.objectContaining({ stripe: corruptStripe, bad: 'data', role: corruptRole, repaired: true })]);
    expect(array.sb.members[badRole]!.readErrorsCorrected).toBe(1);
    expect(defaultArena().pool.inUseBytes).toBe(poolInUse);
    // The unreadable block was rewritten, the corrupt chunk fixed: a third scrub is clean.
    expect((await scrubArray(array, { restart: true })).mismatches).toEqual([]);
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    await array.close();
  });

  it('rebuild rebuilds every role in place and gives back its buffers, also when its target fails', async () => {
    const { devices, shadow } = await filledMembers(6);
    const memberSizeBytes = devices[0]!.sizeBytes;
    // Data, P and Q of stripe 0 lie on different roles: each role rebuilt is each kind somewhere.
    for (const role of [0, 2, 4]) {
      const assembled = await assembleDevices(cloneDevices(devices));
      const { array } = assembled;
      const poolInUse = defaultArena().pool.inUseBytes;
      await failDisk(assembled, `mem${role}`, false);
      const [target] = await prepareRebuild(array, new MemoryDevice(memberSizeBytes, 'replacement'));
      await runRebuild(array, target!);
      expect(defaultArena().pool.inUseBytes).toBe(poolInUse);
      expect(array.health()).toBe('clean');
      // Every chunk the replacement got matches the member it replaces, byte for byte.
      const replacement = array.disks.get(target!)!.device as MemoryDevice;
      expect(replacement.bytes.subarray(DATA_OFFSET).equals(devices[role]!.bytes.subarray(DATA_OFFSET, memberSizeBytes))).toBe(true);
      expect((await scrubArray(array, { restart: true })).mismatches).toEqual([]);
      expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
      await array.close();
    }
    const assembled = await assembleDevices(cloneDevices(devices));
    const poolInUse = defaultArena().pool.inUseBytes;
    await failDisk(assembled, 'mem1', false);
    // Enrolment takes 5 writes (see rebuild-stops-when-its-target-fails); a few chunks later it dies.
    const dying = new FaultDevice(new MemoryDevice(memberSizeBytes, 'replacement'), { failWritesAfter: 12 });
    const [target] = await prepareRebuild(assembled.array, dying);
    await expect(runRebuild(assembled.array, target!)).rejects.toMatchObject({ code: 'E_IO' });
    expect(defaultArena().pool.inUseBytes).toBe(poolInUse);
    await assembled.array.close();
  });
});
