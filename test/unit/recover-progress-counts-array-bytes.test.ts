// Proves recovery of a dirty-log array reports its progress in bytes of array data (each listed
// stripe counts the array data it holds), like every other progress report, not as a count of
// stripes passed off as bytes.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

describe('recover progress', () => {
  it('counts array bytes of the listed stripes', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4, chunkSizeBytes: 4096, memberSizeBytes: 4 * 1024 * 1024 + 16 * 4096 });
    const array = await openMemoryArray(devices);
    const g = array.geometry;
    const dirty = [1, 4, 7];
    for (const stripe of dirty) await array.write(stripe * g.stripeDataBytes, Buffer.alloc(4096, 0xab));
    await array.abandon(); // power lost: the journal still lists the stripes

    const seen: { doneBytes: number; totalBytes: number }[] = [];
    const again = await assembleDevices(devices, { onRecoveryProgress: (progress) => seen.push({ ...progress }) });
    const recovery = again.report.recovery as { stripes: number[] };
    expect(recovery.stripes).toEqual(dirty);
    expect(seen.map((p) => p.doneBytes)).toEqual(dirty.map((_, i) => (i + 1) * g.stripeDataBytes));
    expect(new Set(seen.map((p) => p.totalBytes))).toEqual(new Set([dirty.length * g.stripeDataBytes]));
    await again.array.close();
  });
});
