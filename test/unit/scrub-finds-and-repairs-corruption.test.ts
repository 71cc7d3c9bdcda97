// Proves: scrub finds corruption injected on each member (data and parity), repairs it, and on
// RAID-6 names the member holding the bad chunk; a clean array scrubs with zero mismatches.
import { describe, expect, it } from 'vitest';
import { classifyRow, scrubArray } from '../../src/engine/scrub.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { cloneDevices, fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';
import { MIB } from '../../src/units.js';

const DATA_OFFSET = 4 * MIB;

describe('scrub', () => {
  for (const [level, layout] of [[4, 'parity-last'], [5, 'left-symmetric'], [6, 'left-symmetric'], [6, 'left-asymmetric'], [6, 'right-asymmetric']] as const) {
    it(`RAID-${level} ${layout}: corruption on each member is found, named and repaired`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const chunk = 8192;
      const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: chunk, layout });
      const setup = await openMemoryArray(devices);
      const shadow = await fillRandom(setup, level);
      await setup.close();
      const clean = await openMemoryArray(cloneDevices(devices));
      expect((await scrubArray(clean)).mismatches).toEqual([]);
      await clean.close();
      for (let role = 0; role < raidDevices; role++) {
        const copies = cloneDevices(devices);
        const { array } = await assembleDevices(copies);
        const stripe = 3;
        const map = array.geometry.stripeMap(stripe);
        const kind = map.pRole === role ? 'P' : map.qRole === role ? 'Q' : 'data';
        // Flip bytes in the second block of this member's chunk of the stripe.
        const at = DATA_OFFSET + stripe * chunk + 4096 + 100;
        for (let i = 0; i < 50; i++) copies[role]!.bytes[at + i]! ^= 0x5a;
        const found = await scrubArray(array);
        expect(found.mismatches).toHaveLength(1);
        const mismatch = found.mismatches[0]!;
        expect(mismatch.stripe).toBe(stripe);
        expect(mismatch.blocks).toBe(1);
        if (level === 6) {
          expect(mismatch.bad).toBe(kind);
          expect(mismatch.role).toBe(role);
          expect(mismatch.path).toBe(copies[role]!.path);
        } else {
          // RAID-4/5 cannot tell which chunk is wrong: a mismatch, blaming no member.
          expect(mismatch).toMatchObject({ bad: 'parity-mismatch', role: null, path: null });
        }
        const repaired = await scrubArray(array, { repair: true });
        expect(repaired.mismatches[0]!.repaired).toBe(true);
        expect((await scrubArray(array)).mismatches).toEqual([]);
        if (level === 6 || kind !== 'data') {
          // RAID-6 fixes the named chunk; parity corruption is fixed everywhere.
          expect((await array.read(0, array.sizeBytes)).equals(shadow)).toBe(true);
        }
        await array.close();
      }
    });
  }

  it('classifies syndromes as the table says', () => {
    const zero = new Uint8Array(4);
    expect(classifyRow(zero, zero, 3)).toEqual({ bad: 'none' });
    // Single parity: a non-zero Pd only says the row disagrees.
    expect(classifyRow(zero, undefined, 3)).toEqual({ bad: 'none' });
    expect(classifyRow(Uint8Array.of(0, 7, 0, 0), undefined, 3)).toEqual({ bad: 'parity-mismatch' });
    expect(classifyRow(Uint8Array.of(1, 0, 0, 0), zero, 3)).toEqual({ bad: 'P' });
    expect(classifyRow(zero, Uint8Array.of(0, 2, 0, 0), 3)).toEqual({ bad: 'Q' });
    // Data chunk 2 off by e: Pd = e, Qd = g^2 e = 4e.
    expect(classifyRow(Uint8Array.of(3, 0, 1, 0), Uint8Array.of(12, 0, 4, 0), 3)).toEqual({ bad: 'data', index: 2 });
    // Inconsistent z across bytes: two chunks bad.
    expect(classifyRow(Uint8Array.of(1, 1, 0, 0), Uint8Array.of(2, 4, 0, 0), 3)).toEqual({ bad: 'unknown' });
    // z beyond the data count.
    expect(classifyRow(Uint8Array.of(1, 0, 0, 0), Uint8Array.of(16, 0, 0, 0), 3)).toEqual({ bad: 'unknown' });
  });

  it('refuses a degraded array, and resumes from its checkpoint', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 3, chunkSizeBytes: 4096 });
    const degraded = await assembleDevices(cloneDevices(devices).slice(0, 2));
    await expect(scrubArray(degraded.array)).rejects.toMatchObject({ code: 'E_ARRAY_DEGRADED' });
    const { array } = await assembleDevices(devices);
    await array.commitSuperblocks((sb) => { sb.scrubOffsetBytes = 10 * 4096; });
    const resumed = await scrubArray(array);
    expect(resumed.resumedFromStripe).toBe(10);
    expect(resumed.stripesChecked).toBe(array.geometry.stripeCount - 10);
    expect(array.sb.scrubOffsetBytes).toBe(0);
    await array.close();
  });
});
