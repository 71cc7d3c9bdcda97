import { it } from 'vitest';
import { createHash } from 'node:crypto';
import { encodeSuperblock, decodeSuperblock, FLAG_DIRTY, type Superblock } from '../../src/format/superblock.js';
import { buildMemberLayout } from '../../src/format/layout.js';
import { MIB, KIB } from '../../src/units.js';
const member = (i: number) => Buffer.alloc(16, 0x10 * (i + 1));
it('scratch', () => {
  const sb: Superblock = {
    versionMajor: 1, versionMinor: 0,
    arrayUuid: Buffer.from('a1a2a3a4b1b2c1c2d1d2e1e2e3e4e5e6', 'hex'), memberUuid: member(1), name: 'golden',
    createdAtMs: 1_700_000_000_000, updatedAtMs: 1_700_000_123_456, events: 42,
    level: 5, layout: 'left-symmetric', policy: 'dirty-log', raidDevices: 4, chunkSizeBytes: 512 * KIB, flags: FLAG_DIRTY,
    memberSizeBytes: 64 * MIB, dataSizeBytes: 60 * MIB, arraySizeBytes: 180 * MIB, writeIntentChunkBytes: MIB,
    resyncOffsetBytes: 16 * MIB, scrubOffsetBytes: 8 * MIB, thisIndex: 1, regions: buildMemberLayout(64 * MIB),
    members: [
      { uuid: member(0), role: 0, state: 'active', recoveryOffsetBytes: 0 },
      { uuid: member(1), role: 1, state: 'active', recoveryOffsetBytes: 0 },
      { uuid: member(2), role: 2, state: 'rebuilding', recoveryOffsetBytes: 2 * MIB },
      { uuid: member(3), role: 3, state: 'active', recoveryOffsetBytes: 0 },
      { uuid: member(4), role: null, state: 'spare', recoveryOffsetBytes: 0 },
    ],
  };
  const b = encodeSuperblock(sb);
  console.log(createHash('sha256').update(b).digest('hex'));
  for (let o = 0; o < 4096; o += 16) { const l = b.subarray(o, o + 16); if (l.some((x) => x !== 0)) console.log(o.toString().padStart(4), l.toString('hex')); }
  console.log(decodeSuperblock(b).ok);
  // bug probes
  const c = Buffer.from(b); c.writeBigUInt64LE(2n ** 60n, 80);
  const { crc32c } = require('../../src/format/crc32c.js');
});
