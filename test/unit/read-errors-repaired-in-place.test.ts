// Proves: a member read error (latent sector error) is rebuilt from parity, returned, rewritten
// to that member and counted; a member write error fails that member and the write completes.
import { describe, expect, it } from 'vitest';
import { FaultDevice } from '../../src/device/fault-device.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import type { ArrayEvent } from '../../src/engine/raid-array.js';
import { fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';
import { MIB } from '../../src/units.js';

describe('member I/O errors', () => {
  it('a read error is repaired from parity and counted', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 16384 });
    const setup = await openMemoryArray(devices);
    const shadow = await fillRandom(setup, 11);
    await setup.close();
    const faulty = new FaultDevice(devices[1]!, { seed: 1 });
    const badStart = 4 * MIB + 3 * 16384 + 4096; // member 1, stripe 3, second block
    faulty.addBadRange(badStart, badStart + 4096);
    const events: ArrayEvent[] = [];
    const { array } = await assembleDevices([devices[0]!, faulty, devices[2]!, devices[3]!], { onEvent: (e) => events.push(e) });
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    const errorsSeen = faulty.readErrors;
    expect(errorsSeen).toBeGreaterThan(0);
    expect(events).toContainEqual({ kind: 'read-error-corrected', path: 'mem1', memberDataOffsetBytes: badStart - 4 * MIB });
    expect(array.sb.members[1]!.readErrorsCorrected).toBe(1);
    expect(array.sb.members[1]!.state).toBe('active');
    // The rewrite remapped the sector: a second full read sees no error.
    expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
    expect(faulty.readErrors).toBe(errorsSeen);
    await array.close();
    // The count survives in the superblocks.
    const again = await openMemoryArray(devices);
    expect(again.sb.members[1]!.readErrorsCorrected).toBe(1);
    await again.close();
  });

  it('a read error while writing is planned around and rewritten', async () => {
    const devices = await makeMemoryMembers({ level: 6, raidDevices: 5, chunkSizeBytes: 4096 });
    const faulty = new FaultDevice(devices[2]!, { seed: 2 });
    faulty.addBadRange(4 * MIB, 4 * MIB + 64 * 4096);
    const { array } = await assembleDevices([devices[0]!, devices[1]!, faulty, devices[3]!, devices[4]!]);
    const data = Buffer.alloc(100, 9);
    for (let stripe = 0; stripe < 8; stripe++) await array.write(stripe * array.geometry.stripeDataBytes + 10, data);
    expect(faulty.readErrors).toBeGreaterThan(0);
    expect(array.sb.members[2]!.state).toBe('active');
    for (let stripe = 0; stripe < 8; stripe++) expect((await array.read(stripe * array.geometry.stripeDataBytes + 10, 100)).equals(data)).toBe(true);
    await array.close();
  });

  it('a write error fails the member and the write completes degraded', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096 });
    const faulty = new FaultDevice(devices[3]!, { failWritesAfter: 0 });
    const events: ArrayEvent[] = [];
    const { array } = await assembleDevices([devices[0]!, devices[1]!, devices[2]!, faulty], { onEvent: (e) => events.push(e) });
    const data = Buffer.alloc(3 * 4096 * 4, 0x33);
    await array.write(0, data);
    expect(events.some((e) => e.kind === 'member-failed' && e.path === 'mem3')).toBe(true);
    expect(array.state()).toBe('degraded');
    expect((await array.read(0, data.length)).equals(data)).toBe(true);
    await array.close();
  });
});
