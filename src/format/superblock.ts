// Superblock codec: pure encode/decode, no I/O. The byte map is in docs/FORMAT.md and is
// pinned by golden-byte tests. Corrupt input is an expected result with a reason, not a throw.

import { assert, isPowerOfTwo } from '../units.js';
import {
  asBuffer, checksumProblem, corrupt, crcBefore, declareFields, entryOffsetBytes, hasMagic, idOfName, nameOfId,
  readBytes, readUint, truncatedProblem, writeBytes, writeUint, type DecodeResult,
} from './codec.js';
import { checkRegions, SUPERBLOCK_SIZE_BYTES, type Region } from './layout.js';
import {
  LEVELS, MAX_CHUNK_SIZE_BYTES, MAX_MEMBERS, MEMBER_STATES, MIN_CHUNK_SIZE_BYTES, POLICIES,
  REGION_KINDS, layoutById, layoutByName, minRaidDevices, parityCount,
  type LayoutName, type Level, type MemberState, type Policy,
} from './types.js';
import { UUID_SIZE_BYTES } from './uuid.js';
import { writeIntentChunkProblem } from './write-intent.js';

export const SUPERBLOCK_MAGIC = Buffer.from('JRAIDSB1', 'ascii');
export const FORMAT_VERSION_MAJOR = 1;
/**
 * 1.1 added the data-journal region kind (the journal policy); 1.2 per-node journal areas
 * (clusterNodes, cluster mode). 1.0 and 1.1 arrays open unchanged: a reader checks the
 * feature, not the number.
 */
export const FORMAT_VERSION_MINOR = 2;
export const NAME_SIZE_BYTES = 32;
export const MAX_REGIONS = 16;
const NO_ROLE = 0xffff;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Array-wide flags. */
export const FLAG_DIRTY = 1 << 0; // opened for writing without a journal (resync policy): clear on clean close

export interface MemberEntry {
  uuid: Buffer;
  /** Slot in the stripe (0..raidDevices-1), or null for a spare. */
  role: number | null;
  state: MemberState;
  /** How far a rebuild onto this member has come, in member data bytes. */
  recoveryOffsetBytes: number;
  /** Re-add: only regions marked in the write-intent bitmap are rebuilt. */
  partialRebuild: boolean;
  /** Read errors on this member repaired from parity, over its life in the array. */
  readErrorsCorrected: number;
}

const MEMBER_FLAG_PARTIAL_REBUILD = 1 << 0;

/**
 * A free member-table slot (a member was removed): no uuid (all zero bytes; a member uuid never
 * is), no role, state faulty, everything else zero. A 1.0 reader that predates free slots reads
 * it as a faulty member that no device carries, which is harmless (docs/FORMAT.md, Free slots).
 */
export function freeSlot(): MemberEntry {
  return { uuid: Buffer.alloc(UUID_SIZE_BYTES), role: null, state: 'faulty', recoveryOffsetBytes: 0, partialRebuild: false, readErrorsCorrected: 0 };
}

export function isFreeSlot(entry: MemberEntry): boolean {
  return entry.role === null && entry.state === 'faulty' && entry.uuid.every((byte) => byte === 0);
}

export interface Superblock {
  versionMajor: number;
  versionMinor: number;
  arrayUuid: Buffer;
  memberUuid: Buffer;
  name: string;
  createdAtMs: number;
  updatedAtMs: number;
  events: number;
  level: Level;
  layout: LayoutName;
  policy: Policy;
  raidDevices: number;
  chunkSizeBytes: number;
  flags: number;
  memberSizeBytes: number;
  /** Bytes of each member's data region that hold stripes: a whole number of chunks. */
  dataSizeBytes: number;
  arraySizeBytes: number;
  writeIntentChunkBytes: number;
  /** Parity is known good below this member data offset; equal to dataSizeBytes when all is in sync. */
  resyncOffsetBytes: number;
  /** Where an interrupted scrub resumes, in member data bytes; 0 when none is pending. */
  scrubOffsetBytes: number;
  /** This member's index in `members`. */
  thisIndex: number;
  /**
   * Cluster mode (format 1.2): the journal region is split into this many node areas, one per
   * cluster node id. 0 (every array before 1.2, and arrays made without --cluster-nodes): one
   * area, no cluster.
   */
  clusterNodes?: number;
  regions: Region[];
  members: MemberEntry[];
}

// The byte map (docs/FORMAT.md, "Superblock"): every byte of the 4096 is in one field.
export const SUPERBLOCK_FIELDS = declareFields('superblock', SUPERBLOCK_SIZE_BYTES, {
  magic: [0, 8, 'bytes'], versionMajor: [8, 2, 'u16'], versionMinor: [10, 2, 'u16'], superblockSize: [12, 4, 'u32'],
  arrayUuid: [16, UUID_SIZE_BYTES, 'bytes'], memberUuid: [32, UUID_SIZE_BYTES, 'bytes'], name: [48, 32, 'bytes'],
  createdAt: [80, 8, 'u64'], updatedAt: [88, 8, 'u64'], events: [96, 8, 'u64'],
  level: [104, 1, 'u8'], layout: [105, 1, 'u8'], policy: [106, 1, 'u8'], clusterNodes: [107, 1, 'u8'],
  raidDevices: [108, 2, 'u16'], memberCount: [110, 2, 'u16'], chunkSize: [112, 4, 'u32'], flags: [116, 4, 'u32'],
  memberSize: [120, 8, 'u64'], dataSize: [128, 8, 'u64'], arraySize: [136, 8, 'u64'], writeIntentChunk: [144, 8, 'u64'],
  resyncOffset: [152, 8, 'u64'], scrubOffset: [160, 8, 'u64'], thisIndex: [168, 2, 'u16'], regionCount: [170, 2, 'u16'],
  reserved172: [172, 4, 'reserved'], regionTable: [176, 384, 'table'], memberTable: [560, 2560, 'table'],
  reserved3120: [3120, 972, 'reserved'], checksum: [4092, 4, 'u32'],
});
export const REGION_ENTRY_FIELDS = declareFields('region-table entry', 24, {
  kind: [0, 2, 'u16'], reserved2: [2, 6, 'reserved'], offset: [8, 8, 'u64'], size: [16, 8, 'u64'],
});
export const MEMBER_ENTRY_FIELDS = declareFields('member-table entry', 40, {
  uuid: [0, UUID_SIZE_BYTES, 'bytes'], role: [16, 2, 'u16'], state: [18, 1, 'u8'], flags: [19, 1, 'u8'],
  reserved20: [20, 4, 'reserved'], recoveryOffset: [24, 8, 'u64'], readErrorsCorrected: [32, 4, 'u32'], reserved36: [36, 4, 'reserved'],
});
const H = SUPERBLOCK_FIELDS.field;
const R = REGION_ENTRY_FIELDS.field;
const M = MEMBER_ENTRY_FIELDS.field;
assert(H.magic.sizeBytes === SUPERBLOCK_MAGIC.length, 'magic fills its field');
assert(H.name.sizeBytes === NAME_SIZE_BYTES, 'name field');
assert(H.regionTable.sizeBytes === MAX_REGIONS * REGION_ENTRY_FIELDS.sizeBytes, 'region table holds MAX_REGIONS entries');
assert(H.memberTable.sizeBytes === MAX_MEMBERS * MEMBER_ENTRY_FIELDS.sizeBytes, 'member table holds MAX_MEMBERS entries');

const regionAt = (index: number) => entryOffsetBytes(H.regionTable, REGION_ENTRY_FIELDS, index);
const memberAt = (index: number) => entryOffsetBytes(H.memberTable, MEMBER_ENTRY_FIELDS, index);

export function encodeSuperblock(sb: Superblock): Buffer {
  assert(sb.regions.length <= MAX_REGIONS, 'too many regions');
  assert(sb.members.length <= MAX_MEMBERS, 'too many members');
  assert(sb.arrayUuid.length === UUID_SIZE_BYTES && sb.memberUuid.length === UUID_SIZE_BYTES, 'uuid size');
  const bytes = Buffer.alloc(SUPERBLOCK_SIZE_BYTES);
  writeBytes(bytes, H.magic, SUPERBLOCK_MAGIC);
  writeUint(bytes, H.versionMajor, sb.versionMajor);
  writeUint(bytes, H.versionMinor, sb.versionMinor);
  writeUint(bytes, H.superblockSize, SUPERBLOCK_SIZE_BYTES);
  writeBytes(bytes, H.arrayUuid, sb.arrayUuid);
  writeBytes(bytes, H.memberUuid, sb.memberUuid);
  const name = Buffer.from(sb.name, 'utf8');
  assert(name.length <= NAME_SIZE_BYTES && !sb.name.includes('\0'), 'name fits and has no NUL (checked by caller)');
  writeBytes(bytes, H.name, name);
  writeUint(bytes, H.createdAt, sb.createdAtMs);
  writeUint(bytes, H.updatedAt, sb.updatedAtMs);
  writeUint(bytes, H.events, sb.events);
  writeUint(bytes, H.level, sb.level);
  const layout = layoutByName(sb.layout);
  assert(layout, `unknown layout ${sb.layout}`);
  writeUint(bytes, H.layout, layout.id);
  writeUint(bytes, H.policy, idOfName(POLICIES, sb.policy));
  writeUint(bytes, H.raidDevices, sb.raidDevices);
  writeUint(bytes, H.memberCount, sb.members.length);
  writeUint(bytes, H.chunkSize, sb.chunkSizeBytes);
  writeUint(bytes, H.flags, sb.flags);
  writeUint(bytes, H.memberSize, sb.memberSizeBytes);
  writeUint(bytes, H.dataSize, sb.dataSizeBytes);
  writeUint(bytes, H.arraySize, sb.arraySizeBytes);
  writeUint(bytes, H.writeIntentChunk, sb.writeIntentChunkBytes);
  writeUint(bytes, H.resyncOffset, sb.resyncOffsetBytes);
  writeUint(bytes, H.scrubOffset, sb.scrubOffsetBytes);
  writeUint(bytes, H.thisIndex, sb.thisIndex);
  writeUint(bytes, H.clusterNodes, sb.clusterNodes ?? 0);
  writeUint(bytes, H.regionCount, sb.regions.length);
  sb.regions.forEach((region, index) => {
    const at = regionAt(index);
    writeUint(bytes, R.kind, idOfName(REGION_KINDS, region.kind), at);
    writeUint(bytes, R.offset, region.offsetBytes, at);
    writeUint(bytes, R.size, region.sizeBytes, at);
  });
  sb.members.forEach((member, index) => {
    const at = memberAt(index);
    assert(member.uuid.length === UUID_SIZE_BYTES, 'member uuid size');
    writeBytes(bytes, M.uuid, member.uuid, at);
    writeUint(bytes, M.role, member.role ?? NO_ROLE, at);
    writeUint(bytes, M.state, idOfName(MEMBER_STATES, member.state), at);
    writeUint(bytes, M.flags, member.partialRebuild ? MEMBER_FLAG_PARTIAL_REBUILD : 0, at);
    writeUint(bytes, M.recoveryOffset, member.recoveryOffsetBytes, at);
    writeUint(bytes, M.readErrorsCorrected, Math.min(member.readErrorsCorrected, 0xffffffff), at);
  });
  writeUint(bytes, H.checksum, crcBefore(bytes, H.checksum));
  return bytes;
}

export function decodeSuperblock(bytes: Uint8Array): DecodeResult<Superblock> {
  const buf = asBuffer(bytes);
  if (!hasMagic(buf, H.magic, SUPERBLOCK_MAGIC)) return corrupt('bad magic: no jraid superblock here');
  if (buf.length < SUPERBLOCK_SIZE_BYTES) return corrupt(truncatedProblem(buf.length, 'a superblock', SUPERBLOCK_SIZE_BYTES));
  const crcProblem = checksumProblem(buf, H.checksum, crcBefore(buf, H.checksum));
  if (crcProblem) return corrupt(crcProblem);
  const versionMajor = readUint(buf, H.versionMajor);
  const versionMinor = readUint(buf, H.versionMinor);
  if (versionMajor > FORMAT_VERSION_MAJOR) {
    return corrupt(`newer format version ${versionMajor}.${versionMinor}: this jraid reads version ${FORMAT_VERSION_MAJOR}; upgrade jraid`);
  }
  if (versionMajor < 1) return corrupt(`unknown format version ${versionMajor}.${versionMinor}`);
  const superblockSizeBytes = readUint(buf, H.superblockSize);
  if (superblockSizeBytes !== SUPERBLOCK_SIZE_BYTES) {
    return corrupt(`superblock size field is ${superblockSizeBytes}, expected ${SUPERBLOCK_SIZE_BYTES}`);
  }

  const level = readUint(buf, H.level) as Level;
  if (!LEVELS.includes(level)) return corrupt(`impossible geometry: level ${level}`);
  const layoutId = readUint(buf, H.layout);
  const layout = layoutById(layoutId);
  if (!layout || !layout.levels.includes(level)) return corrupt(`impossible geometry: layout id ${layoutId} for level ${level}`);
  const policyId = readUint(buf, H.policy);
  const policy = nameOfId(POLICIES, policyId);
  if (!policy) return corrupt(`unknown consistency policy id ${policyId}`);

  const raidDevices = readUint(buf, H.raidDevices);
  const memberCount = readUint(buf, H.memberCount);
  const chunkSizeBytes = readUint(buf, H.chunkSize);
  const memberSizeBytes = readUint(buf, H.memberSize);
  const dataSizeBytes = readUint(buf, H.dataSize);
  const arraySizeBytes = readUint(buf, H.arraySize);
  const thisIndex = readUint(buf, H.thisIndex);
  const regionCount = readUint(buf, H.regionCount);

  if (raidDevices < minRaidDevices(level) || raidDevices > MAX_MEMBERS) {
    return corrupt(`impossible geometry: ${raidDevices} raid devices for level ${level}`);
  }
  if (memberCount < raidDevices || memberCount > MAX_MEMBERS) {
    return corrupt(`impossible geometry: member table of ${memberCount} for ${raidDevices} raid devices`);
  }
  if (!isPowerOfTwo(chunkSizeBytes) || chunkSizeBytes < MIN_CHUNK_SIZE_BYTES || chunkSizeBytes > MAX_CHUNK_SIZE_BYTES) {
    return corrupt(`impossible geometry: chunk size ${chunkSizeBytes}`);
  }
  if (![memberSizeBytes, dataSizeBytes, arraySizeBytes].every(Number.isSafeInteger)) {
    return corrupt('impossible geometry: a size field exceeds 2^53 bytes');
  }
  for (const [what, field] of [['created time', H.createdAt], ['update time', H.updatedAt], ['event count', H.events], ['write-intent chunk', H.writeIntentChunk]] as const) {
    if (!Number.isSafeInteger(readUint(buf, field))) return corrupt(`${what} exceeds 2^53`);
  }
  const writeIntentChunkBytes = readUint(buf, H.writeIntentChunk);
  const chunkProblem = writeIntentChunkProblem(writeIntentChunkBytes);
  if (chunkProblem) return corrupt(chunkProblem);
  if (dataSizeBytes <= 0 || dataSizeBytes % chunkSizeBytes !== 0) {
    return corrupt(`impossible geometry: data size ${dataSizeBytes} is not a positive multiple of the chunk`);
  }
  if (arraySizeBytes !== dataSizeBytes * (raidDevices - parityCount(level))) {
    return corrupt(`impossible geometry: array size ${arraySizeBytes} does not match ${raidDevices} members of ${dataSizeBytes} data bytes`);
  }
  if (thisIndex >= memberCount) return corrupt(`this member's index ${thisIndex} is outside the member table`);
  if (regionCount > MAX_REGIONS) return corrupt(`region table of ${regionCount} entries (max ${MAX_REGIONS})`);

  const regions: Region[] = [];
  for (let index = 0; index < regionCount; index++) {
    const at = regionAt(index);
    const kindId = readUint(buf, R.kind, at);
    const kind = nameOfId(REGION_KINDS, kindId);
    if (!kind) return corrupt(`region ${index} has unknown kind ${kindId}`);
    regions.push({ kind, offsetBytes: readUint(buf, R.offset, at), sizeBytes: readUint(buf, R.size, at) });
  }
  const regionProblem = checkRegions(regions, memberSizeBytes);
  if (regionProblem) return corrupt(`impossible geometry: ${regionProblem}`);
  const data = regions.find((region) => region.kind === 'data')!;
  if (dataSizeBytes > data.sizeBytes) {
    return corrupt(`impossible geometry: data size ${dataSizeBytes} exceeds the data region (${data.sizeBytes})`);
  }
  if (policy === 'journal' && !regions.some((region) => region.kind === 'data-journal')) {
    return corrupt('policy journal requires the data-journal region, and the region table has none');
  }

  const members: MemberEntry[] = [];
  const rolesSeen = new Set<number>();
  for (let index = 0; index < memberCount; index++) {
    const at = memberAt(index);
    const roleRaw = readUint(buf, M.role, at);
    const role = roleRaw === NO_ROLE ? null : roleRaw;
    const stateId = readUint(buf, M.state, at);
    const state = nameOfId(MEMBER_STATES, stateId);
    if (!state) return corrupt(`member ${index} has unknown state ${stateId}`);
    if (role !== null) {
      if (role >= raidDevices) return corrupt(`member ${index} has role ${role} of ${raidDevices}`);
      if (rolesSeen.has(role)) return corrupt(`role ${role} is held by two members`);
      rolesSeen.add(role);
    }
    const recoveryOffsetBytes = readUint(buf, M.recoveryOffset, at);
    if (!Number.isSafeInteger(recoveryOffsetBytes) || recoveryOffsetBytes > dataSizeBytes) {
      return corrupt(`member ${index} recovery offset out of range`);
    }
    const memberFlags = readUint(buf, M.flags, at);
    if (memberFlags & ~MEMBER_FLAG_PARTIAL_REBUILD) return corrupt(`member ${index} has unknown flags 0x${memberFlags.toString(16)}`);
    members.push({
      uuid: readBytes(buf, M.uuid, at), role, state, recoveryOffsetBytes,
      partialRebuild: (memberFlags & MEMBER_FLAG_PARTIAL_REBUILD) !== 0, readErrorsCorrected: readUint(buf, M.readErrorsCorrected, at),
    });
  }
  const resyncOffsetBytes = readUint(buf, H.resyncOffset);
  const scrubOffsetBytes = readUint(buf, H.scrubOffset);
  if (!(resyncOffsetBytes <= dataSizeBytes) || !(scrubOffsetBytes <= dataSizeBytes)) {
    return corrupt('resync or scrub offset past the data size');
  }
  const memberUuid = readBytes(buf, H.memberUuid);
  if (!members[thisIndex]!.uuid.equals(memberUuid)) {
    return corrupt("member table entry for this member does not carry this member's uuid");
  }
  if (memberUuid.every((byte) => byte === 0)) {
    return corrupt("this member's uuid is all zero bytes, which marks a free member-table slot");
  }
  const nameBytes = readBytes(buf, H.name);
  const nameEnd = nameBytes.indexOf(0);
  let name: string;
  try {
    name = UTF8.decode(nameBytes.subarray(0, nameEnd === -1 ? NAME_SIZE_BYTES : nameEnd));
  } catch {
    return corrupt('array name is not valid UTF-8');
  }
  const sb: Superblock = {
    versionMajor,
    versionMinor,
    arrayUuid: readBytes(buf, H.arrayUuid),
    memberUuid,
    name,
    createdAtMs: readUint(buf, H.createdAt),
    updatedAtMs: readUint(buf, H.updatedAt),
    events: readUint(buf, H.events),
    level,
    layout: layout.name,
    policy,
    raidDevices,
    chunkSizeBytes,
    flags: readUint(buf, H.flags),
    memberSizeBytes,
    dataSizeBytes,
    arraySizeBytes,
    writeIntentChunkBytes,
    resyncOffsetBytes,
    scrubOffsetBytes,
    thisIndex,
    regions,
    members,
  };
  const clusterNodes = readUint(buf, H.clusterNodes);
  if (clusterNodes > 0) sb.clusterNodes = clusterNodes;
  return { ok: true, value: sb };
}
