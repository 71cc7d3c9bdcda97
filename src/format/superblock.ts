// Superblock codec: pure encode/decode, no I/O. The byte map is in docs/FORMAT.md and is
// pinned by golden-byte tests. Corrupt input is an expected result with a reason, not a throw.

import { assert, isPowerOfTwo } from '../units.js';
import { crc32c } from './crc32c.js';
import { checkRegions, SUPERBLOCK_SIZE_BYTES, type Region } from './layout.js';
import {
  LEVELS, MAX_CHUNK_SIZE_BYTES, MAX_MEMBERS, MEMBER_STATES, MIN_CHUNK_SIZE_BYTES, POLICIES,
  REGION_KINDS, layoutById, layoutByName, minRaidDevices, parityCount,
  type LayoutName, type Level, type MemberState, type Policy,
} from './types.js';
import { UUID_SIZE_BYTES } from './uuid.js';

export const SUPERBLOCK_MAGIC = Buffer.from('JRAIDSB1', 'ascii');
export const FORMAT_VERSION_MAJOR = 1;
export const FORMAT_VERSION_MINOR = 0;
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
  regions: Region[];
  members: MemberEntry[];
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

// Byte offsets of the fixed header fields (docs/FORMAT.md, "Superblock").
const AT = {
  magic: 0, versionMajor: 8, versionMinor: 10, superblockSize: 12, arrayUuid: 16, memberUuid: 32,
  name: 48, createdAt: 80, updatedAt: 88, events: 96, level: 104, layout: 105, policy: 106,
  raidDevices: 108, memberCount: 110, chunkSize: 112, flags: 116, memberSize: 120, dataSize: 128,
  arraySize: 136, writeIntentChunk: 144, resyncOffset: 152, scrubOffset: 160, thisIndex: 168,
  regionCount: 170, regionTable: 176, memberTable: 560, crc: 4092,
} as const;
const REGION_ENTRY_SIZE_BYTES = 24;
const MEMBER_ENTRY_SIZE_BYTES = 40;
assert(AT.regionTable + MAX_REGIONS * REGION_ENTRY_SIZE_BYTES <= AT.memberTable, 'region table fits');
assert(AT.memberTable + MAX_MEMBERS * MEMBER_ENTRY_SIZE_BYTES <= AT.crc, 'member table fits');

function idOf<T extends string>(table: readonly { id: number; name: T }[], name: T): number {
  const entry = table.find((item) => item.name === name);
  assert(entry, `unknown name ${name}`);
  return entry.id;
}

function nameOf<T extends string>(table: readonly { id: number; name: T }[], id: number): T | undefined {
  return table.find((item) => item.id === id)?.name;
}

export function encodeSuperblock(sb: Superblock): Buffer {
  assert(sb.regions.length <= MAX_REGIONS, 'too many regions');
  assert(sb.members.length <= MAX_MEMBERS, 'too many members');
  assert(sb.arrayUuid.length === UUID_SIZE_BYTES && sb.memberUuid.length === UUID_SIZE_BYTES, 'uuid size');
  const bytes = Buffer.alloc(SUPERBLOCK_SIZE_BYTES);
  SUPERBLOCK_MAGIC.copy(bytes, AT.magic);
  bytes.writeUInt16LE(sb.versionMajor, AT.versionMajor);
  bytes.writeUInt16LE(sb.versionMinor, AT.versionMinor);
  bytes.writeUInt32LE(SUPERBLOCK_SIZE_BYTES, AT.superblockSize);
  sb.arrayUuid.copy(bytes, AT.arrayUuid);
  sb.memberUuid.copy(bytes, AT.memberUuid);
  const name = Buffer.from(sb.name, 'utf8');
  assert(name.length <= NAME_SIZE_BYTES && !sb.name.includes('\0'), 'name fits and has no NUL (checked by caller)');
  name.copy(bytes, AT.name);
  bytes.writeBigUInt64LE(BigInt(sb.createdAtMs), AT.createdAt);
  bytes.writeBigUInt64LE(BigInt(sb.updatedAtMs), AT.updatedAt);
  bytes.writeBigUInt64LE(BigInt(sb.events), AT.events);
  bytes.writeUInt8(sb.level, AT.level);
  const layout = layoutByName(sb.layout);
  assert(layout, `unknown layout ${sb.layout}`);
  bytes.writeUInt8(layout.id, AT.layout);
  bytes.writeUInt8(idOf(POLICIES, sb.policy), AT.policy);
  bytes.writeUInt16LE(sb.raidDevices, AT.raidDevices);
  bytes.writeUInt16LE(sb.members.length, AT.memberCount);
  bytes.writeUInt32LE(sb.chunkSizeBytes, AT.chunkSize);
  bytes.writeUInt32LE(sb.flags, AT.flags);
  bytes.writeBigUInt64LE(BigInt(sb.memberSizeBytes), AT.memberSize);
  bytes.writeBigUInt64LE(BigInt(sb.dataSizeBytes), AT.dataSize);
  bytes.writeBigUInt64LE(BigInt(sb.arraySizeBytes), AT.arraySize);
  bytes.writeBigUInt64LE(BigInt(sb.writeIntentChunkBytes), AT.writeIntentChunk);
  bytes.writeBigUInt64LE(BigInt(sb.resyncOffsetBytes), AT.resyncOffset);
  bytes.writeBigUInt64LE(BigInt(sb.scrubOffsetBytes), AT.scrubOffset);
  bytes.writeUInt16LE(sb.thisIndex, AT.thisIndex);
  bytes.writeUInt16LE(sb.regions.length, AT.regionCount);
  sb.regions.forEach((region, index) => {
    const at = AT.regionTable + index * REGION_ENTRY_SIZE_BYTES;
    bytes.writeUInt16LE(idOf(REGION_KINDS, region.kind), at);
    bytes.writeBigUInt64LE(BigInt(region.offsetBytes), at + 8);
    bytes.writeBigUInt64LE(BigInt(region.sizeBytes), at + 16);
  });
  sb.members.forEach((member, index) => {
    const at = AT.memberTable + index * MEMBER_ENTRY_SIZE_BYTES;
    member.uuid.copy(bytes, at);
    bytes.writeUInt16LE(member.role ?? NO_ROLE, at + 16);
    bytes.writeUInt8(idOf(MEMBER_STATES, member.state), at + 18);
    bytes.writeUInt8(member.partialRebuild ? MEMBER_FLAG_PARTIAL_REBUILD : 0, at + 19);
    bytes.writeBigUInt64LE(BigInt(member.recoveryOffsetBytes), at + 24);
    bytes.writeUInt32LE(Math.min(member.readErrorsCorrected, 0xffffffff), at + 32);
  });
  bytes.writeUInt32LE(crc32c(bytes.subarray(0, AT.crc)), AT.crc);
  return bytes;
}

function u64(bytes: Buffer, at: number): number {
  const value = bytes.readBigUInt64LE(at);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.NaN : Number(value);
}

export function decodeSuperblock(bytes: Uint8Array): DecodeResult<Superblock> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < SUPERBLOCK_MAGIC.length || !buf.subarray(0, SUPERBLOCK_MAGIC.length).equals(SUPERBLOCK_MAGIC)) {
    return { ok: false, reason: 'bad magic: no jraid superblock here' };
  }
  if (buf.length < SUPERBLOCK_SIZE_BYTES) {
    return { ok: false, reason: `truncated: ${buf.length} bytes, a superblock is ${SUPERBLOCK_SIZE_BYTES}` };
  }
  const storedCrc = buf.readUInt32LE(AT.crc);
  const actualCrc = crc32c(buf.subarray(0, AT.crc));
  if (storedCrc !== actualCrc) {
    return { ok: false, reason: `bad checksum: stored ${hex32(storedCrc)}, computed ${hex32(actualCrc)}` };
  }
  const versionMajor = buf.readUInt16LE(AT.versionMajor);
  const versionMinor = buf.readUInt16LE(AT.versionMinor);
  if (versionMajor > FORMAT_VERSION_MAJOR) {
    return { ok: false, reason: `newer format version ${versionMajor}.${versionMinor}: this jraid reads version ${FORMAT_VERSION_MAJOR}; upgrade jraid` };
  }
  if (versionMajor < 1) return { ok: false, reason: `unknown format version ${versionMajor}.${versionMinor}` };
  if (buf.readUInt32LE(AT.superblockSize) !== SUPERBLOCK_SIZE_BYTES) {
    return { ok: false, reason: `superblock size field is ${buf.readUInt32LE(AT.superblockSize)}, expected ${SUPERBLOCK_SIZE_BYTES}` };
  }

  const level = buf.readUInt8(AT.level) as Level;
  if (!LEVELS.includes(level)) return { ok: false, reason: `impossible geometry: level ${level}` };
  const layout = layoutById(buf.readUInt8(AT.layout));
  if (!layout || !layout.levels.includes(level)) {
    return { ok: false, reason: `impossible geometry: layout id ${buf.readUInt8(AT.layout)} for level ${level}` };
  }
  const policy = nameOf(POLICIES, buf.readUInt8(AT.policy));
  if (!policy) return { ok: false, reason: `unknown consistency policy id ${buf.readUInt8(AT.policy)}` };

  const raidDevices = buf.readUInt16LE(AT.raidDevices);
  const memberCount = buf.readUInt16LE(AT.memberCount);
  const chunkSizeBytes = buf.readUInt32LE(AT.chunkSize);
  const memberSizeBytes = u64(buf, AT.memberSize);
  const dataSizeBytes = u64(buf, AT.dataSize);
  const arraySizeBytes = u64(buf, AT.arraySize);
  const thisIndex = buf.readUInt16LE(AT.thisIndex);
  const regionCount = buf.readUInt16LE(AT.regionCount);

  if (raidDevices < minRaidDevices(level) || raidDevices > MAX_MEMBERS) {
    return { ok: false, reason: `impossible geometry: ${raidDevices} raid devices for level ${level}` };
  }
  if (memberCount < raidDevices || memberCount > MAX_MEMBERS) {
    return { ok: false, reason: `impossible geometry: member table of ${memberCount} for ${raidDevices} raid devices` };
  }
  if (!isPowerOfTwo(chunkSizeBytes) || chunkSizeBytes < MIN_CHUNK_SIZE_BYTES || chunkSizeBytes > MAX_CHUNK_SIZE_BYTES) {
    return { ok: false, reason: `impossible geometry: chunk size ${chunkSizeBytes}` };
  }
  if (![memberSizeBytes, dataSizeBytes, arraySizeBytes].every(Number.isSafeInteger)) {
    return { ok: false, reason: 'impossible geometry: a size field exceeds 2^53 bytes' };
  }
  for (const [field, at] of [['created time', AT.createdAt], ['update time', AT.updatedAt], ['event count', AT.events], ['write-intent chunk', AT.writeIntentChunk]] as const) {
    if (!Number.isSafeInteger(u64(buf, at))) return { ok: false, reason: `${field} exceeds 2^53` };
  }
  const writeIntentChunkBytes = u64(buf, AT.writeIntentChunk);
  if (!isPowerOfTwo(writeIntentChunkBytes) || writeIntentChunkBytes < MIN_CHUNK_SIZE_BYTES) {
    return { ok: false, reason: `write-intent chunk ${writeIntentChunkBytes} is not a power of two of at least 4 KiB` };
  }
  if (dataSizeBytes <= 0 || dataSizeBytes % chunkSizeBytes !== 0) {
    return { ok: false, reason: `impossible geometry: data size ${dataSizeBytes} is not a positive multiple of the chunk` };
  }
  if (arraySizeBytes !== dataSizeBytes * (raidDevices - parityCount(level))) {
    return { ok: false, reason: `impossible geometry: array size ${arraySizeBytes} does not match ${raidDevices} members of ${dataSizeBytes} data bytes` };
  }
  if (thisIndex >= memberCount) return { ok: false, reason: `this member's index ${thisIndex} is outside the member table` };
  if (regionCount > MAX_REGIONS) return { ok: false, reason: `region table of ${regionCount} entries (max ${MAX_REGIONS})` };

  const regions: Region[] = [];
  for (let index = 0; index < regionCount; index++) {
    const at = AT.regionTable + index * REGION_ENTRY_SIZE_BYTES;
    const kind = nameOf(REGION_KINDS, buf.readUInt16LE(at));
    if (!kind) return { ok: false, reason: `region ${index} has unknown kind ${buf.readUInt16LE(at)}` };
    regions.push({ kind, offsetBytes: u64(buf, at + 8), sizeBytes: u64(buf, at + 16) });
  }
  const regionProblem = checkRegions(regions, memberSizeBytes);
  if (regionProblem) return { ok: false, reason: `impossible geometry: ${regionProblem}` };
  const data = regions.find((region) => region.kind === 'data')!;
  if (dataSizeBytes > data.sizeBytes) {
    return { ok: false, reason: `impossible geometry: data size ${dataSizeBytes} exceeds the data region (${data.sizeBytes})` };
  }

  const members: MemberEntry[] = [];
  const rolesSeen = new Set<number>();
  for (let index = 0; index < memberCount; index++) {
    const at = AT.memberTable + index * MEMBER_ENTRY_SIZE_BYTES;
    const roleRaw = buf.readUInt16LE(at + 16);
    const role = roleRaw === NO_ROLE ? null : roleRaw;
    const state = nameOf(MEMBER_STATES, buf.readUInt8(at + 18));
    if (!state) return { ok: false, reason: `member ${index} has unknown state ${buf.readUInt8(at + 18)}` };
    if (role !== null) {
      if (role >= raidDevices) return { ok: false, reason: `member ${index} has role ${role} of ${raidDevices}` };
      if (rolesSeen.has(role)) return { ok: false, reason: `role ${role} is held by two members` };
      rolesSeen.add(role);
    }
    const recoveryOffsetBytes = u64(buf, at + 24);
    if (!Number.isSafeInteger(recoveryOffsetBytes) || recoveryOffsetBytes > dataSizeBytes) {
      return { ok: false, reason: `member ${index} recovery offset out of range` };
    }
    const memberFlags = buf.readUInt8(at + 19);
    if (memberFlags & ~MEMBER_FLAG_PARTIAL_REBUILD) return { ok: false, reason: `member ${index} has unknown flags 0x${memberFlags.toString(16)}` };
    members.push({
      uuid: Buffer.from(buf.subarray(at, at + UUID_SIZE_BYTES)), role, state, recoveryOffsetBytes,
      partialRebuild: (memberFlags & MEMBER_FLAG_PARTIAL_REBUILD) !== 0, readErrorsCorrected: buf.readUInt32LE(at + 32),
    });
  }
  const resyncOffsetBytes = u64(buf, AT.resyncOffset);
  const scrubOffsetBytes = u64(buf, AT.scrubOffset);
  if (!(resyncOffsetBytes <= dataSizeBytes) || !(scrubOffsetBytes <= dataSizeBytes)) {
    return { ok: false, reason: 'resync or scrub offset past the data size' };
  }
  const memberUuid = Buffer.from(buf.subarray(AT.memberUuid, AT.memberUuid + UUID_SIZE_BYTES));
  if (!members[thisIndex]!.uuid.equals(memberUuid)) {
    return { ok: false, reason: "member table entry for this member does not carry this member's uuid" };
  }
  if (memberUuid.every((byte) => byte === 0)) {
    return { ok: false, reason: "this member's uuid is all zero bytes, which marks a free member-table slot" };
  }
  const nameBytes = buf.subarray(AT.name, AT.name + NAME_SIZE_BYTES);
  const nameEnd = nameBytes.indexOf(0);
  let name: string;
  try {
    name = UTF8.decode(nameBytes.subarray(0, nameEnd === -1 ? NAME_SIZE_BYTES : nameEnd));
  } catch {
    return { ok: false, reason: 'array name is not valid UTF-8' };
  }
  const sb: Superblock = {
    versionMajor,
    versionMinor,
    arrayUuid: Buffer.from(buf.subarray(AT.arrayUuid, AT.arrayUuid + UUID_SIZE_BYTES)),
    memberUuid,
    name,
    createdAtMs: u64(buf, AT.createdAt),
    updatedAtMs: u64(buf, AT.updatedAt),
    events: u64(buf, AT.events),
    level,
    layout: layout.name,
    policy,
    raidDevices,
    chunkSizeBytes,
    flags: buf.readUInt32LE(AT.flags),
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
  return { ok: true, value: sb };
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

