// Proves: buildMemberLayout declares 4 KiB-aligned, non-overlapping regions inside the member with data at 4 MiB, and checkRegions names each kind of bad table.
import { describe, expect, it } from 'vitest';
import {
  DATA_OFFSET_BYTES, SUPERBLOCK_SIZE_BYTES, buildMemberLayout, checkRegions, findRegion, minMemberSizeBytes, type Region,
} from '../../src/format/layout.js';
import { GIB, KIB, MIB, TIB } from '../../src/units.js';

const MEMBER_SIZES_BYTES = [4 * MIB + 4 * KIB, 4 * MIB + 64 * KIB + 100, 64 * MIB, 64 * MIB + 4095, 1 * GIB + 512, 8 * TIB];

describe('buildMemberLayout', () => {
  it('lays out the default member exactly as docs/FORMAT.md says', () => {
    expect(buildMemberLayout(64 * MIB)).toEqual([
      { kind: 'superblock-primary', offsetBytes: 0, sizeBytes: 4 * KIB },
      { kind: 'superblock-secondary', offsetBytes: 4 * KIB, sizeBytes: 4 * KIB },
      { kind: 'bad-blocks', offsetBytes: 64 * KIB, sizeBytes: 64 * KIB },
      { kind: 'write-intent', offsetBytes: 128 * KIB, sizeBytes: 128 * KIB },
      { kind: 'journal', offsetBytes: 256 * KIB, sizeBytes: 4 * MIB - 256 * KIB },
      { kind: 'data', offsetBytes: 4 * MIB, sizeBytes: 60 * MIB },
    ]);
    expect(DATA_OFFSET_BYTES).toBe(4 * MIB);
    expect(SUPERBLOCK_SIZE_BYTES).toBe(4 * KIB);
  });

  for (const memberSizeBytes of MEMBER_SIZES_BYTES) {
    it(`member of ${memberSizeBytes} bytes: aligned, ordered, disjoint, inside, data at 4 MiB`, () => {
      const regions = buildMemberLayout(memberSizeBytes);
      let previousEndBytes = 0;
      for (const region of regions) {
        expect(region.offsetBytes % (4 * KIB)).toBe(0);
        expect(region.sizeBytes % (4 * KIB)).toBe(0);
        expect(region.sizeBytes).toBeGreaterThan(0);
        expect(region.offsetBytes).toBeGreaterThanOrEqual(previousEndBytes);
        previousEndBytes = region.offsetBytes + region.sizeBytes;
      }
      expect(previousEndBytes).toBeLessThanOrEqual(memberSizeBytes);
      const data = findRegion(regions, 'data')!;
      expect(data.offsetBytes).toBe(4 * MIB);
      // The data region takes every whole 4 KiB block after 4 MiB; a ragged tail is left unused.
      expect(data.sizeBytes).toBe(Math.floor((memberSizeBytes - 4 * MIB) / (4 * KIB)) * 4 * KIB);
      expect(checkRegions(regions, memberSizeBytes)).toBeUndefined();
    });
  }

  it('refuses, as a broken caller invariant, a member with no room for data', () => {
    expect(() => buildMemberLayout(4 * MIB)).toThrow(/assertion failed/);
    expect(() => buildMemberLayout(4 * MIB + 4095)).toThrow(/assertion failed/);
  });

  it('minMemberSizeBytes is the fixed zones plus one chunk', () => {
    expect(minMemberSizeBytes(64 * KIB)).toBe(4 * MIB + 64 * KIB);
    const regions = buildMemberLayout(minMemberSizeBytes(4 * KIB));
    expect(findRegion(regions, 'data')!.sizeBytes).toBe(4 * KIB);
  });
});

describe('checkRegions', () => {
  const memberSizeBytes = 64 * MIB;
  const good = buildMemberLayout(memberSizeBytes);
  /** The good table with region `kind` replaced by `change`. */
  function withRegion(kind: Region['kind'], change: Partial<Region>): Region[] {
    return good.map((region) => (region.kind === kind ? { ...region, ...change } : region));
  }

  it('accepts the built table in any order', () => {
    expect(checkRegions([...good].reverse(), memberSizeBytes)).toBeUndefined();
  });

  it('reports overlap', () => {
    expect(checkRegions(withRegion('write-intent', { offsetBytes: 96 * KIB }), memberSizeBytes))
      .toBe('region write-intent overlaps the region before it');
    expect(checkRegions(withRegion('superblock-secondary', { offsetBytes: 0 }), memberSizeBytes))
      .toMatch(/^region superblock-(primary|secondary) overlaps the region before it$/);
    expect(checkRegions(withRegion('journal', { sizeBytes: 4 * MIB }), memberSizeBytes))
      .toBe('region data overlaps the region before it');
  });

  it('reports misalignment of an offset or a size', () => {
    expect(checkRegions(withRegion('bad-blocks', { offsetBytes: 64 * KIB + 512 }), memberSizeBytes))
      .toBe('region bad-blocks is not aligned to 4096 bytes');
    expect(checkRegions(withRegion('journal', { sizeBytes: 1000 }), memberSizeBytes))
      .toBe('region journal is not aligned to 4096 bytes');
  });

  it('reports a region past the member end', () => {
    expect(checkRegions(good, 32 * MIB)).toBe(`region data ends past the member (${64 * MIB} > ${32 * MIB})`);
    expect(checkRegions(withRegion('data', { sizeBytes: 60 * MIB + 4 * KIB }), memberSizeBytes))
      .toBe(`region data ends past the member (${64 * MIB + 4 * KIB} > ${64 * MIB})`);
  });

  it('reports an empty region', () => {
    expect(checkRegions(withRegion('bad-blocks', { sizeBytes: 0 }), memberSizeBytes)).toBe('region bad-blocks is empty');
  });

  it('reports each missing required kind', () => {
    for (const kind of ['superblock-primary', 'superblock-secondary', 'data'] as const) {
      expect(checkRegions(good.filter((region) => region.kind !== kind), memberSizeBytes)).toBe(`region table has no ${kind} region`);
    }
  });

  it('reports a kind listed twice', () => {
    const twice = [...good, { kind: 'journal' as const, offsetBytes: 8 * KIB, sizeBytes: 4 * KIB }];
    expect(checkRegions(twice, memberSizeBytes)).toBe('region table lists a kind twice');
  });
});
