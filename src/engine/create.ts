// Creating an array: every check first, then the writes. A refused create writes nothing.

import type { BlockDevice } from '../device/block-device.js';
import { FileDevice } from '../device/file-device.js';
import { probeMember, requireMemberPath, type MemberProbe } from '../device/member-path.js';
import { JraidError } from '../errors.js';
import { DATA_JOURNAL_DEFAULT_BYTES, DATA_JOURNAL_MIN_BYTES, buildMemberLayout, findRegion, minMemberSizeBytes } from '../format/layout.js';
import { FORMAT_VERSION_MAJOR, FORMAT_VERSION_MINOR, NAME_SIZE_BYTES, type MemberEntry, type Superblock } from '../format/superblock.js';
import {
  DEFAULT_CHUNK_SIZE_BYTES, LEVELS, MAX_CHUNK_SIZE_BYTES, MAX_MEMBERS, MIN_CHUNK_SIZE_BYTES, defaultLayout,
  layoutByName, minRaidDevices, parityCount, type LayoutName, type Level, type Policy,
} from '../format/types.js';
import { formatUuid, newUuid } from '../format/uuid.js';
import { WRITE_INTENT_BIT_COUNT } from '../format/write-intent.js';
import { BLOCK_SIZE_BYTES, MIB, alignDown, assert, formatSizeBytes, isPowerOfTwo } from '../units.js';
import { detectForeignSignatures, SIGNATURE_HEAD_BYTES, SIGNATURE_TAIL_BYTES } from '../format/foreign-signatures.js';
import { rm } from 'node:fs/promises';
import { MemberDisk, memberIo, probeZone, zeroMetadata } from './member-disk.js';
import { readSuperblocks, writeSuperblocks } from './superblock-io.js';
import { lockAll, type LockedMembers } from './member-locks.js';
import { Geometry } from '../geometry/geometry.js';
import { computeP, computeQ } from '../parity/parity.js';

export interface CreateOptions {
  level: number;
  raidDevices: number;
  paths: string[];
  spareCount?: number;
  chunkSizeBytes?: number;
  layout?: string;
  name?: string;
  /** Size of image files to create where a path does not exist. */
  createSizeBytes?: number;
  assumeClean?: boolean;
  force?: boolean;
  /** dirty-log (default), journal or resync; any other text is refused. */
  policy?: string;
  /** Cluster mode (format 1.2): journal areas for this many nodes; 0 or absent: no cluster. */
  clusterNodes?: number;
  /** The journal policy's data journal per member (default DATA_JOURNAL_DEFAULT_BYTES); refused for other policies. */
  journalSizeBytes?: number;
}

/** The most cluster nodes an array is made for: each node's journal slots stay at least 64 KiB on RAID-6. */
export const CLUSTER_NODES_CREATE_MAX = 8;

export interface CreateProgress {
  doneBytes: number;
  totalBytes: number;
}

export interface CreateResult {
  superblock: Superblock;
  paths: string[];
  createdPaths: string[];
  parityInitialised: 'computed' | 'skipped-new-members' | 'skipped-assume-clean';
}


/** Policies create can make. */
export const CREATABLE_POLICIES = ['dirty-log', 'journal', 'resync'] as const satisfies readonly Policy[];

export function validateCreateOptions(options: CreateOptions): { level: Level; layout: LayoutName; chunkSizeBytes: number; policy: Policy; clusterNodes: number; dataJournalBytes: number } {
  if (!LEVELS.includes(options.level as Level)) {
    throw new JraidError('E_BAD_LEVEL', `unknown level ${options.level}`, { hint: 'use --level 4, 5 or 6' });
  }
  const level = options.level as Level;
  const layoutName = options.layout ?? defaultLayout(level);
  const layout = layoutByName(layoutName);
  if (!layout || !layout.levels.includes(level)) {
    const valid = ['parity-last', 'left-symmetric', 'left-asymmetric', 'right-symmetric', 'right-asymmetric']
      .filter((name) => layoutByName(name)!.levels.includes(level));
    throw new JraidError('E_BAD_LAYOUT', `layout "${layoutName}" is not a RAID-${level} layout`, { hint: `use one of: ${valid.join(', ')}` });
  }
  const chunkSizeBytes = options.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES;
  if (!isPowerOfTwo(chunkSizeBytes) || chunkSizeBytes < MIN_CHUNK_SIZE_BYTES || chunkSizeBytes > MAX_CHUNK_SIZE_BYTES) {
    throw new JraidError('E_BAD_CHUNK', `chunk size ${chunkSizeBytes} bytes is not a power of two from 4K to 64M`, { hint: 'use e.g. --chunk 64K or --chunk 512K' });
  }
  const minimum = minRaidDevices(level);
  if (!Number.isInteger(options.raidDevices) || options.raidDevices < minimum) {
    throw new JraidError('E_TOO_FEW_MEMBERS', `RAID-${level} needs at least ${minimum} raid devices, got ${options.raidDevices}`, { hint: `give --raid-devices ${minimum} or more` });
  }
  const spareCount = options.spareCount ?? 0;
  const expected = options.raidDevices + spareCount;
  if (options.paths.length !== expected) {
    throw new JraidError('E_TOO_FEW_MEMBERS', `--raid-devices ${options.raidDevices}${spareCount ? ` and --spare-devices ${spareCount}` : ''} need ${expected} member paths, got ${options.paths.length}`, {
      hint: 'list exactly one path per raid device and spare',
    });
  }
  if (expected > MAX_MEMBERS) throw new JraidError('E_TOO_MANY_MEMBERS', `at most ${MAX_MEMBERS} members, got ${expected}`);
  if (options.name !== undefined && (Buffer.byteLength(options.name) > NAME_SIZE_BYTES || !/^[\w.:+-]+$/.test(options.name))) {
    throw new JraidError('E_USAGE', `array name "${options.name}" must be 1-${NAME_SIZE_BYTES} bytes of letters, digits and . _ : + -`);
  }
  const policy = options.policy ?? 'dirty-log';
  if (!(CREATABLE_POLICIES as readonly string[]).includes(policy)) {
    throw new JraidError('E_BAD_POLICY', `unknown consistency policy "${policy}"`, { hint: `use ${CREATABLE_POLICIES.join(', ')}` });
  }
  const clusterNodes = options.clusterNodes ?? 0;
  if (!Number.isInteger(clusterNodes) || clusterNodes < 0 || clusterNodes > CLUSTER_NODES_CREATE_MAX) {
    throw new JraidError('E_USAGE', `--cluster-nodes ${options.clusterNodes} is not a node count from 1 to ${CLUSTER_NODES_CREATE_MAX}`, { hint: `give 1 to ${CLUSTER_NODES_CREATE_MAX} nodes, or leave the option out for an array served by one daemon` });
  }
  if (clusterNodes > 0 && policy !== 'dirty-log') {
    throw new JraidError('E_USAGE', `--cluster-nodes needs the dirty-log consistency policy (each node keeps its own journal area), not ${policy}`, { hint: 'leave --consistency-policy out, or give dirty-log' });
  }
  if (options.journalSizeBytes !== undefined && policy !== 'journal') {
    throw new JraidError('E_USAGE', `--journal-size is for the journal policy, not ${policy}`, { hint: 'add --consistency-policy journal, or leave out --journal-size' });
  }
  const dataJournalBytes = policy === 'journal' ? options.journalSizeBytes ?? DATA_JOURNAL_DEFAULT_BYTES : 0;
  if (policy === 'journal' && (!Number.isSafeInteger(dataJournalBytes) || dataJournalBytes < DATA_JOURNAL_MIN_BYTES || dataJournalBytes % BLOCK_SIZE_BYTES !== 0)) {
    throw new JraidError('E_BAD_SIZE', `journal size ${dataJournalBytes} bytes is not a multiple of 4 KiB of at least ${DATA_JOURNAL_MIN_BYTES / 1024} KiB`, { hint: 'use e.g. --journal-size 16M' });
  }
  return { level, layout: layout.name, chunkSizeBytes, policy: policy as Policy, clusterNodes, dataJournalBytes };
}

export async function createArray(options: CreateOptions, onProgress?: (progress: CreateProgress) => void): Promise<CreateResult> {
  const { level, layout, chunkSizeBytes, policy, clusterNodes, dataJournalBytes } = validateCreateOptions(options);
  const probes = await Promise.all(options.paths.map((path) => probeMember(path)));
  checkProbes(probes, options, chunkSizeBytes, dataJournalBytes);

  // Every remaining check needs the existing members open (for writing: block devices with
  // O_EXCL, so a mounted one is refused) and locked, and reads what they hold. Only when all
  // pass are the missing image files created and anything written.
  const devices: FileDevice[] = [];
  const createdPaths: string[] = [];
  const locks: LockedMembers[] = [];
  let written = false;
  try {
    const opened = new Map<string, FileDevice>();
    for (const probe of probes) {
      if (probe.kind === 'missing') continue;
      const device = await FileDevice.open(probe.path, { exclusive: true });
      devices.push(device);
      opened.set(probe.path, device);
    }
    locks.push(await lockAll([...opened.values()], 'exclusive'));
    if (!options.force) {
      for (const device of opened.values()) await refuseOccupied(device);
    }
    const ordered: FileDevice[] = [];
    for (const probe of probes) {
      let device = opened.get(probe.path);
      if (!device) {
        device = await FileDevice.open(probe.path, { createSizeBytes: options.createSizeBytes!, exclusive: true });
        createdPaths.push(probe.path);
        devices.push(device);
        locks.push(await lockAll([device], 'exclusive'));
      }
      ordered.push(device);
    }
    const allNew = createdPaths.length === probes.length;
    written = true;
    const superblock = await writeNewArray(ordered, {
      level, layout, chunkSizeBytes, policy, dataJournalBytes, raidDevices: options.raidDevices, name: options.name ?? '', clusterNodes,
      zeroMetadata: !allNew, parityInSync: allNew || !!options.assumeClean,
    });
    let parityInitialised: CreateResult['parityInitialised'] = allNew ? 'skipped-new-members' : 'skipped-assume-clean';
    if (!allNew && !options.assumeClean) {
      await initialiseParity(ordered, superblock, onProgress);
      parityInitialised = 'computed';
    }
    const finalSb = (await readSuperblocks(ordered[0]!)).superblock!;
    return { superblock: finalSb, paths: options.paths, createdPaths, parityInitialised };
  } catch (error) {
    // Refused before anything was written: take back the files this create made.
    if (!written) await Promise.all(createdPaths.map((path) => rm(path, { force: true })));
    throw error;
  } finally {
    for (const lock of locks) lock.release();
    await Promise.all(devices.map((device) => device.close()));
  }
}

function checkProbes(probes: MemberProbe[], options: CreateOptions, chunkSizeBytes: number, dataJournalBytes: number): void {
  const seen = new Map<string, string>();
  const minimumBytes = minMemberSizeBytes(chunkSizeBytes, dataJournalBytes);
  for (const probe of probes) {
    if (probe.kind !== 'missing' || options.createSizeBytes === undefined) requireMemberPath(probe, { missingHint: 'give --size to create image files, or check the path' });
    // A missing path's identity is where it would be: "x.img" and "./x.img" are one file.
    const twin = seen.get(probe.identity);
    if (twin !== undefined) {
      const what = probe.kind !== 'block' ? 'file' : probe.backing ? `device (backed by ${probe.backing.path})` : 'device';
      throw new JraidError('E_MEMBER_DUPLICATE', `${probe.path} and ${twin} are the same ${what}`, { path: probe.path, hint: 'list each member once' });
    }
    seen.set(probe.identity, probe.path);
    const sizeBytes = probe.kind === 'missing' ? options.createSizeBytes! : probe.sizeBytes;
    if (sizeBytes < minimumBytes) {
      throw new JraidError('E_MEMBER_TOO_SMALL', `${probe.path} is ${formatSizeBytes(sizeBytes)}; a member needs at least ${formatSizeBytes(minimumBytes)} (4 MiB of metadata${dataJournalBytes ? `, a ${formatSizeBytes(dataJournalBytes)} data journal` : ''} and one ${formatSizeBytes(chunkSizeBytes)} chunk)`, {
        path: probe.path, hint: `use a larger member, a larger --size, or a smaller --chunk${dataJournalBytes ? ' or --journal-size' : ''}`,
      });
    }
  }
}

/**
 * Refuses a member that already holds something: a jraid superblock (E_MEMBER_FOREIGN) or
 * another format's signature (E_MEMBER_HAS_DATA: a file system, swap, LVM2, md, a partition
 * table). create, add and rebuild onto a new replacement ask the same; --force skips it.
 */
export async function refuseOccupied(device: BlockDevice, ownArrayUuid?: Buffer, ownMemberUuids: readonly Buffer[] = []): Promise<void> {
  const path = device.path;
  const read = await readSuperblocks(device);
  if (read.hasMagic) {
    const own = read.superblock;
    const owner = own ? `array ${own.name || '(unnamed)'} (uuid ${formatUuid(own.arrayUuid)})` : 'a jraid array (damaged superblock)';
    const same = ownArrayUuid !== undefined && own?.arrayUuid.equals(ownArrayUuid);
    const removed = same && !ownMemberUuids.some((uuid) => uuid.equals(own!.memberUuid));
    throw new JraidError('E_MEMBER_FOREIGN', `${path} already belongs to ${owner}`, {
      path,
      hint: removed ? 'it was removed from this array: use --force to add it again as a blank member'
        : same ? 'it is an old member of this array: use jraid re-add, or --force to use it as a blank member'
          : 'use --force to overwrite it, or pick another member',
    });
  }
  const headBytes = Math.min(device.sizeBytes, SIGNATURE_HEAD_BYTES);
  const tailOffsetBytes = Math.max(0, device.sizeBytes - SIGNATURE_TAIL_BYTES);
  const head = Buffer.alloc(headBytes);
  const tail = Buffer.alloc(device.sizeBytes - tailOffsetBytes);
  if (head.length > 0) await memberIo(device, 'read', probeZone(device), 0, head);
  if (tail.length > 0) await memberIo(device, 'read', probeZone(device), tailOffsetBytes, tail);
  const found = detectForeignSignatures({ sizeBytes: device.sizeBytes, head, tail, tailOffsetBytes });
  if (found.length > 0) {
    const first = found[0]!;
    const others = found.length > 1 ? ` (and ${found.slice(1).map((signature) => signature.what).join(', ')})` : '';
    throw new JraidError('E_MEMBER_HAS_DATA', `${path} holds ${first.what}${others} (its signature at byte ${first.offsetBytes}); using it would destroy that`, {
      path, hint: `use --force to overwrite it (wipefs -a ${path} erases the signatures), or pick another member`,
      details: { signatures: found },
    });
  }
}

interface NewArrayParams {
  level: Level;
  layout: LayoutName;
  chunkSizeBytes: number;
  policy: Policy;
  /** The journal policy's data-journal region per member (0: none). */
  dataJournalBytes?: number;
  raidDevices: number;
  name: string;
  /** Cluster mode: journal areas for this many nodes (0 or absent: none). */
  clusterNodes?: number;
  zeroMetadata: boolean;
  parityInSync: boolean;
}

/** Writes fresh superblocks (and clears the metadata regions of reused members). */
export async function writeNewArray(devices: BlockDevice[], params: NewArrayParams): Promise<Superblock> {
  const memberSizeBytes = Math.min(...devices.map((device) => device.sizeBytes));
  const dataJournalBytes = params.dataJournalBytes ?? (params.policy === 'journal' ? DATA_JOURNAL_DEFAULT_BYTES : 0);
  assert(params.policy === 'journal' || dataJournalBytes === 0, 'only the journal policy has a data journal');
  const regions = buildMemberLayout(memberSizeBytes, dataJournalBytes);
  const dataRegion = findRegion(regions, 'data')!;
  const dataSizeBytes = alignDown(dataRegion.sizeBytes, params.chunkSizeBytes);
  const arraySizeBytes = dataSizeBytes * (params.raidDevices - parityCount(params.level));
  const writeIntentChunkBytes = Math.max(MIB, 2 ** Math.ceil(Math.log2(Math.max(1, dataSizeBytes / WRITE_INTENT_BIT_COUNT))));
  const members: MemberEntry[] = devices.map((_, index) => ({
    uuid: newUuid(),
    role: index < params.raidDevices ? index : null,
    state: index < params.raidDevices ? 'active' : 'spare',
    recoveryOffsetBytes: 0,
    partialRebuild: false,
    readErrorsCorrected: 0,
  }));
  const now = Date.now();
  const base: Superblock = {
    versionMajor: FORMAT_VERSION_MAJOR, versionMinor: FORMAT_VERSION_MINOR,
    arrayUuid: newUuid(), memberUuid: members[0]!.uuid, name: params.name,
    createdAtMs: now, updatedAtMs: now, events: 1,
    level: params.level, layout: params.layout, policy: params.policy,
    raidDevices: params.raidDevices, chunkSizeBytes: params.chunkSizeBytes, flags: 0,
    memberSizeBytes, dataSizeBytes, arraySizeBytes, writeIntentChunkBytes,
    resyncOffsetBytes: params.parityInSync ? dataSizeBytes : 0, scrubOffsetBytes: 0,
    thisIndex: 0, regions, members,
    ...(params.clusterNodes ? { clusterNodes: params.clusterNodes } : {}),
  };
  await Promise.all(devices.map(async (device, index) => {
    if (params.zeroMetadata) await zeroMetadata(device);
    await writeSuperblocks(device, { ...base, memberUuid: members[index]!.uuid, thisIndex: index });
  }));
  return base;
}

/** Computes P (and Q) for every stripe from the data already on the members, checkpointing as it goes. */
export async function initialiseParity(devices: BlockDevice[], sb: Superblock, onProgress?: (progress: CreateProgress) => void): Promise<void> {
  const geometry = new Geometry({ level: sb.level, layout: sb.layout, raidDevices: sb.raidDevices, chunkSizeBytes: sb.chunkSizeBytes, dataSizeBytes: sb.dataSizeBytes });
  const disks = devices.slice(0, sb.raidDevices).map((device, index) => new MemberDisk(device, { ...sb, memberUuid: sb.members[index]!.uuid, thisIndex: index }));
  await resyncStripes(geometry, (role) => disks[role]!, 0, geometry.stripeCount, async (doneStripes) => {
    onProgress?.({ doneBytes: doneStripes * sb.chunkSizeBytes * geometry.dataDisks, totalBytes: geometry.arraySizeBytes });
  });
  await Promise.all(devices.map((device) => device.flush()));
  const events = sb.events + 1;
  await Promise.all(devices.map((device, index) =>
    writeSuperblocks(device, { ...sb, events, resyncOffsetBytes: sb.dataSizeBytes, memberUuid: sb.members[index]!.uuid, thisIndex: index, updatedAtMs: Date.now() })));
}

/** Rewrites parity of stripes [first, end) from their data, a chunk at a time. */
export async function resyncStripes(
  geometry: Geometry,
  diskForRole: (role: number) => MemberDisk,
  firstStripe: number,
  endStripe: number,
  onStripes?: (doneStripes: number) => Promise<void>,
): Promise<void> {
  const chunkSizeBytes = geometry.chunkSizeBytes;
  const data = Array.from({ length: geometry.dataDisks }, () => Buffer.alloc(chunkSizeBytes));
  const p = Buffer.alloc(chunkSizeBytes);
  const q = Buffer.alloc(chunkSizeBytes);
  const reportEvery = Math.max(1, Math.floor((64 * MIB) / (chunkSizeBytes * geometry.dataDisks)));
  for (let stripe = firstStripe; stripe < endStripe; stripe++) {
    const map = geometry.stripeMap(stripe);
    const memberDataOffsetBytes = geometry.memberDataOffsetBytes(stripe, 0);
    await Promise.all(map.dataRoles.map((role, i) => diskForRole(role).readData(memberDataOffsetBytes, data[i]!)));
    computeP(data, p);
    const writes = [diskForRole(map.pRole).writeData(memberDataOffsetBytes, p)];
    if (map.qRole >= 0) {
      computeQ(data, q, map.qExponents);
      writes.push(diskForRole(map.qRole).writeData(memberDataOffsetBytes, q));
    }
    await Promise.all(writes);
    if (onStripes && ((stripe + 1 - firstStripe) % reportEvery === 0 || stripe + 1 === endStripe)) await onStripes(stripe + 1);
  }
}
