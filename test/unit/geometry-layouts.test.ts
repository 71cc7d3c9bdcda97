// Proves: every level/layout maps each stripe onto the members as Linux md does, and extents() splits ranges exactly at chunk edges.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/rng.js';
import { Geometry, type StripeMap } from '../../src/geometry/geometry.js';
import { LAYOUTS, minRaidDevices, type LayoutName, type Level } from '../../src/format/types.js';

const CHUNK_SIZE_BYTES = 4096;
const RAID_DEVICES_MAX = 8;

function geometryFor(level: Level, layout: LayoutName, raidDevices: number, chunkSizeBytes = CHUNK_SIZE_BYTES): Geometry {
  // Stripes 0..3n inclusive must exist.
  const stripeCount = 3 * raidDevices + 1;
  return new Geometry({ level, layout, raidDevices, chunkSizeBytes, dataSizeBytes: stripeCount * chunkSizeBytes });
}

/**
 * Linux md's raid5_compute_sector (drivers/md/raid5.c), written out per case so it is checked
 * independently of geometry.ts. `stripe` is md's stripe2: the chunk row number.
 */
function mdStripeMap(level: Level, layout: LayoutName, n: number, stripe: number): StripeMap {
  const dataCount = n - (level === 6 ? 2 : 1);
  const dataRoles: number[] = [];
  let pd: number;
  let qd = -1;
  if (layout === 'parity-last') {
    pd = dataCount; // ALGORITHM_PARITY_N
    for (let i = 0; i < dataCount; i++) dataRoles.push(i);
    return { dataRoles, pRole: pd, qRole: qd };
  }
  const left = layout === 'left-symmetric' || layout === 'left-asymmetric';
  pd = left ? n - 1 - (stripe % n) : stripe % n;
  if (level !== 6) {
    for (let i = 0; i < dataCount; i++) {
      if (layout.endsWith('-symmetric')) dataRoles.push((pd + 1 + i) % n);
      else dataRoles.push(i >= pd ? i + 1 : i);
    }
    return { dataRoles, pRole: pd, qRole: qd };
  }
  if (layout.endsWith('-symmetric')) {
    qd = (pd + 1) % n;
    for (let i = 0; i < dataCount; i++) dataRoles.push((pd + 2 + i) % n);
  } else if (pd === n - 1) {
    qd = 0; // Q D D D P
    for (let i = 0; i < dataCount; i++) dataRoles.push(i + 1);
  } else {
    qd = pd + 1; // D D P Q D
    for (let i = 0; i < dataCount; i++) dataRoles.push(i >= pd ? i + 2 : i);
  }
  return { dataRoles, pRole: pd, qRole: qd };
}

const combos = LAYOUTS.flatMap((layout) => layout.levels.map((level) => ({ level, layout: layout.name })));

describe('stripe maps', () => {
  it('covers every layout listed for every level', () => {
    expect(combos.map((c) => `${c.level}/${c.layout}`).sort()).toEqual([
      '4/parity-last',
      '5/left-asymmetric', '5/left-symmetric', '5/right-asymmetric', '5/right-symmetric',
      '6/left-asymmetric', '6/left-symmetric', '6/right-asymmetric', '6/right-symmetric',
    ]);
  });

  for (const { level, layout } of combos) {
    for (let n = minRaidDevices(level); n <= RAID_DEVICES_MAX; n++) {
      it(`RAID-${level} ${layout} on ${n} members`, () => {
        const geometry = geometryFor(level, layout, n);
        const dataCount = n - (level === 6 ? 2 : 1);
        for (let stripe = 0; stripe <= 3 * n; stripe++) {
          const map = geometry.stripeMap(stripe);
          const where = `stripe ${stripe}`;

          // A permutation: data, P and (on RAID-6) Q land on every member exactly once.
          expect(map.dataRoles.length, where).toBe(dataCount);
          if (level !== 6) expect(map.qRole, where).toBe(-1);
          const roles = [...map.dataRoles, map.pRole, ...(level === 6 ? [map.qRole] : [])];
          expect([...roles].sort((a, b) => a - b), where).toEqual(Array.from({ length: n }, (_, i) => i));

          // Placement only; the Q coefficient order has its own test (geometry-raid6-q-order).
          expect({ dataRoles: map.dataRoles, pRole: map.pRole, qRole: map.qRole }, where).toEqual(mdStripeMap(level, layout, n, stripe));
          checkNamedRule(level, layout, n, stripe, map);
        }
      });
    }
  }
});

/** The rules as the brief states them, beside the transcription of md above. */
function checkNamedRule(level: Level, layout: LayoutName, n: number, stripe: number, map: StripeMap): void {
  const where = `RAID-${level} ${layout} n=${n} stripe ${stripe}`;
  if (layout === 'parity-last') {
    expect(map.pRole, where).toBe(n - 1);
    expect(map.dataRoles, where).toEqual(Array.from({ length: n - 1 }, (_, i) => i));
  } else if (layout === 'left-symmetric') {
    const pd = n - 1 - (stripe % n);
    expect(map.pRole, where).toBe(pd);
    if (level === 6) {
      expect(map.qRole, where).toBe((pd + 1) % n);
      map.dataRoles.forEach((role, i) => expect(role, `${where} data ${i}`).toBe((pd + 2 + i) % n));
    } else {
      map.dataRoles.forEach((role, i) => expect(role, `${where} data ${i}`).toBe((pd + 1 + i) % n));
    }
  } else if (layout.endsWith('-asymmetric')) {
    const parity = new Set([map.pRole, map.qRole]);
    const inOrder = Array.from({ length: n }, (_, i) => i).filter((role) => !parity.has(role));
    expect(map.dataRoles, where).toEqual(inOrder);
  }
}

describe('extents()', () => {
  const shapes = [
    { level: 5 as Level, layout: 'left-symmetric' as LayoutName, raidDevices: 3, chunkSizeBytes: 4096 },
    { level: 4 as Level, layout: 'parity-last' as LayoutName, raidDevices: 5, chunkSizeBytes: 8192 },
    { level: 6 as Level, layout: 'left-symmetric' as LayoutName, raidDevices: 6, chunkSizeBytes: 64 * 1024 },
    { level: 6 as Level, layout: 'right-asymmetric' as LayoutName, raidDevices: 8, chunkSizeBytes: 4096 },
  ];

  for (const shape of shapes) {
    it(`RAID-${shape.level} ${shape.raidDevices} members, ${shape.chunkSizeBytes}-byte chunks`, () => {
      const geometry = geometryFor(shape.level, shape.layout, shape.raidDevices, shape.chunkSizeBytes);
      const chunk = shape.chunkSizeBytes;
      const size = geometry.arraySizeBytes;
      expect(size).toBe(geometry.stripeCount * geometry.dataDisks * chunk);

      const rng = new Rng(shape.raidDevices * 31 + shape.level);
      const ranges: [number, number][] = [
        [0, 0], [0, 1], [0, size], [size - 1, 1], [size, 0],
        [chunk - 1, 2], [chunk, chunk], [geometry.stripeDataBytes - 1, 2], [1, size - 2],
      ];
      for (let i = 0; i < 500; i++) {
        const lengthBytes = rng.int(rng.pick([2, chunk, 3 * chunk + 5, geometry.stripeDataBytes * 2]));
        ranges.push([rng.int(size - lengthBytes + 1), lengthBytes]);
      }

      for (const [offsetBytes, lengthBytes] of ranges) {
        const where = `range ${offsetBytes}+${lengthBytes}`;
        const pieces = geometry.extents(offsetBytes, lengthBytes);
        let next = offsetBytes;
        pieces.forEach((piece, i) => {
          expect(piece.lengthBytes, where).toBeGreaterThan(0);
          expect(piece.arrayOffsetBytes, where).toBe(next);
          // Never crosses a chunk, and only splits where a chunk ends.
          expect(piece.chunkOffsetBytes + piece.lengthBytes, where).toBeLessThanOrEqual(chunk);
          if (i > 0) expect(piece.chunkOffsetBytes, where).toBe(0);
          if (i < pieces.length - 1) expect(piece.chunkOffsetBytes + piece.lengthBytes, where).toBe(chunk);
          // The coordinates name the bytes they came from.
          expect(piece.stripe, where).toBeLessThan(geometry.stripeCount);
          expect(piece.dataIndex, where).toBeLessThan(geometry.dataDisks);
          expect(piece.stripe * geometry.stripeDataBytes + piece.dataIndex * chunk + piece.chunkOffsetBytes, where).toBe(piece.arrayOffsetBytes);
          expect(geometry.memberDataOffsetBytes(piece.stripe, piece.chunkOffsetBytes), where).toBe(piece.stripe * chunk + piece.chunkOffsetBytes);
          next += piece.lengthBytes;
        });
        expect(next, where).toBe(offsetBytes + lengthBytes);
      }
    });

    it(`RAID-${shape.level} ${shape.raidDevices} members: each byte offset maps to its stripe, data index and chunk offset`, () => {
      const geometry = geometryFor(shape.level, shape.layout, shape.raidDevices, shape.chunkSizeBytes);
      const chunk = shape.chunkSizeBytes;
      for (let stripe = 0; stripe < geometry.stripeCount; stripe++) {
        for (let dataIndex = 0; dataIndex < geometry.dataDisks; dataIndex++) {
          for (const chunkOffsetBytes of [0, 1, chunk / 2, chunk - 1]) {
            const arrayOffsetBytes = (stripe * geometry.dataDisks + dataIndex) * chunk + chunkOffsetBytes;
            const pieces = geometry.extents(arrayOffsetBytes, 1);
            expect(pieces).toEqual([{ stripe, dataIndex, chunkOffsetBytes, lengthBytes: 1, arrayOffsetBytes }]);
          }
        }
      }
    });
  }

  it('refuses a range past the end of the array', () => {
    const geometry = geometryFor(5, 'left-symmetric', 3);
    expect(() => geometry.extents(geometry.arraySizeBytes - 1, 2)).toThrow(/range within the array/);
    expect(() => geometry.extents(-1, 1)).toThrow(/range within the array/);
  });
});
