// Proves: encodeSuperblock then decodeSuperblock returns an equal value for every level, layout, policy and member table shape.
import { describe, expect, it } from 'vitest';
import { buildMemberLayout, findRegion } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock, FLAG_DIRTY, type MemberEntry, type Superblock } from '../../src/format/superblock.js';
import {
  LAYOUTS, LEVELS, MAX_MEMBERS, POLICIES, minRaidDevices, parityCount,
  type LayoutName, type Level, type Policy,
} from '../../src/format/types.js';
import { KIB, MIB, TIB, alignDown } from '../../src/units.js';

interface Shape {
  level?: Level;
  layout?: LayoutName;
  policy?: Policy;
  raidDevices?: number;
  spares?: number;
  chunkSizeBytes?: number;
  memberSizeBytes?: number;
  name?: string;
}

function uuidFor(seed: number): Buffer {
  return Buffer.from(Array.from({ length: 16 }, (_, index) => (seed * 31 + index * 7) & 0xff));
}

/** A valid superblock for the shape, as seen from member 0. */
function makeSuperblock(shape: Shape): Superblock {
  const level = shape.level ?? 5;
  const raidDevices = shape.raidDevices ?? minRaidDevices(level) + 1;
  const chunkSizeBytes = shape.chunkSizeBytes ?? 64 * KIB;
  const memberSizeBytes = shape.memberSizeBytes ?? 64 * MIB;
  const policy = shape.policy ?? 'journal';
  const regions = buildMemberLayout(memberSizeBytes, policy === 'journal' ? MIB : 0);
  const dataSizeBytes = alignDown(findRegion(regions, 'data')!.sizeBytes, chunkSizeBytes);
  const members: MemberEntry[] = Array.from({ length: raidDevices + (shape.spares ?? 0) }, (_, index) => ({
    uuid: uuidFor(index + 1),
    role: index < raidDevices ? index : null,
    state: index < raidDevices ? 'active' : 'spare',
    recoveryOffsetBytes: 0,
    partialRebuild: false,
    readErrorsCorrected: 0,
  }));
  return {
    versionMajor: 1, versionMinor: 0, arrayUuid: uuidFor(0), memberUuid: members[0]!.uuid, name: shape.name ?? 'rt',
    createdAtMs: 1_650_000_000_000, updatedAtMs: 1_650_000_000_999, events: 7,
    level, layout: shape.layout ?? (level === 4 ? 'parity-last' : 'left-symmetric'), policy,
    raidDevices, chunkSizeBytes, flags: 0, memberSizeBytes, dataSizeBytes,
    arraySizeBytes: dataSizeBytes * (raidDevices - parityCount(level)), writeIntentChunkBytes: MIB,
    resyncOffsetBytes: dataSizeBytes, scrubOffsetBytes: 0, thisIndex: 0, regions, members,
  };
}

function expectRoundTrip(sb: Superblock): void {
  const bytes = encodeSuperblock(sb);
  const decoded = decodeSuperblock(bytes);
  expect(decoded).toEqual({ ok: true, value: sb });
  // And the encoding is stable: what was decoded encodes to the same bytes.
  if (decoded.ok) expect(encodeSuperblock(decoded.value).equals(bytes)).toBe(true);
}

describe('superblock round trip', () => {
  for (const level of LEVELS) {
    for (const layout of LAYOUTS.filter((info) => info.levels.includes(level))) {
      it(`RAID-${level} ${layout.name}, minimum and wider member counts`, () => {
        expectRoundTrip(makeSuperblock({ level, layout: layout.name, raidDevices: minRaidDevices(level) }));
        expectRoundTrip(makeSuperblock({ level, layout: layout.name, raidDevices: 9 }));
      });
    }
  }

  for (const { name: policy } of POLICIES) {
    it(`policy ${policy}`, () => {
      expectRoundTrip(makeSuperblock({ policy }));
    });
  }

  it('spare members (no role)', () => {
    expectRoundTrip(makeSuperblock({ level: 6, raidDevices: 4, spares: 3 }));
  });

  it('a rebuilding member with a recovery offset, a faulty member, and a vacant role', () => {
    const sb = makeSuperblock({ level: 6, raidDevices: 6, spares: 1 });
    sb.members[2] = { ...sb.members[2]!, state: 'rebuilding', recoveryOffsetBytes: 3 * sb.chunkSizeBytes };
    sb.members[4] = { ...sb.members[4]!, state: 'faulty' };
    sb.members[5] = { ...sb.members[5]!, role: null, state: 'faulty' }; // role 5 held by nobody: degraded
    expectRoundTrip(sb);
  });

  it('member flags (partial rebuild) and read-error counts up to 2^32 - 1', () => {
    const sb = makeSuperblock({ raidDevices: 5 });
    sb.members[1] = { ...sb.members[1]!, state: 'rebuilding', recoveryOffsetBytes: sb.chunkSizeBytes, partialRebuild: true };
    sb.members[2] = { ...sb.members[2]!, readErrorsCorrected: 1 };
    sb.members[3] = { ...sb.members[3]!, readErrorsCorrected: 0xffffffff };
    expectRoundTrip(sb);
  });

  it('a read-error count past 32 bits is stored saturated', () => {
    const sb = makeSuperblock({});
    sb.members[0] = { ...sb.members[0]!, readErrorsCorrected: 2 ** 40 };
    const decoded = decodeSuperblock(encodeSuperblock(sb));
    expect(decoded.ok && decoded.value.members[0]!.readErrorsCorrected).toBe(0xffffffff);
  });

  it('this member anywhere in the table, including a spare', () => {
    const sb = makeSuperblock({ raidDevices: 4, spares: 2 });
    for (const thisIndex of [1, 3, 5]) {
      expectRoundTrip({ ...sb, thisIndex, memberUuid: sb.members[thisIndex]!.uuid });
    }
  });

  it('names: empty, UTF-8, and exactly 32 bytes without a terminator', () => {
    for (const name of ['', 'backup-01', 'café:ünïcødé', '日本語の配列', 'x'.repeat(32), 'é'.repeat(16)]) {
      expectRoundTrip(makeSuperblock({ name }));
    }
  });

  it(`the largest member table: ${MAX_MEMBERS} members`, () => {
    expectRoundTrip(makeSuperblock({ level: 6, raidDevices: MAX_MEMBERS }));
    expectRoundTrip(makeSuperblock({ level: 5, raidDevices: MAX_MEMBERS - 4, spares: 4 }));
  });

  it('progress offsets, flags, chunk sizes and counters at their extremes', () => {
    const sb = makeSuperblock({ chunkSizeBytes: 4 * KIB });
    expectRoundTrip({ ...sb, flags: FLAG_DIRTY, resyncOffsetBytes: 0, scrubOffsetBytes: sb.dataSizeBytes, events: Number.MAX_SAFE_INTEGER });
    expectRoundTrip({ ...sb, resyncOffsetBytes: 12 * KIB, scrubOffsetBytes: 8 * KIB, writeIntentChunkBytes: 256 * MIB });
    expectRoundTrip(makeSuperblock({ chunkSizeBytes: 64 * MIB, memberSizeBytes: 4 * MIB + 3 * 64 * MIB }));
  });

  it('large members (8 TiB) whose sizes need more than 32 bits', () => {
    expectRoundTrip(makeSuperblock({ level: 6, raidDevices: 12, memberSizeBytes: 8 * TIB + 12 * KIB, chunkSizeBytes: 512 * KIB }));
  });

  it('a newer minor version', () => {
    expectRoundTrip({ ...makeSuperblock({}), versionMinor: 9 });
  });
});
