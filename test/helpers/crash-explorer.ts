// The crash-state explorer. A concurrent workload runs on recorded members (memory, image files
// or loop devices: the same engine and barrier code over each door to storage); then, for many
// cut points in the log of member writes and flushes, a crashed image of every member is built
// (writes a member flushed are durable, and so is each durable write, the journal's records,
// once it completed; later ones are kept in full, dropped or kept in random subsets, and the
// last one may be torn at a sector boundary), recovery runs, and:
//   - every stripe's parity is consistent (scrub finds nothing);
//   - every write acknowledged (completed and flushed) before the cut reads back intact;
//   - every block written by the unacknowledged batch reads as its old or its new content, or
//     fails with EIO because recovery recorded it torn: never anything else.
// Seeded: a failure names its seed, cut and variant, and replays.
//
// With `policy: 'journal'` (and `loseMembers`), each crashed image is also recovered with each
// member lost (on RAID-6 also each pair), and the check is the journal policy's guarantee:
// every write acknowledged before the cut (its promise resolved: at the `ackPoint` asked) reads
// back intact, every other block reads old or new, and nothing reads as EIO.

import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { BlockDevice } from '../../src/device/block-device.js';
import { FileDevice } from '../../src/device/file-device.js';
import { RecordingDevice, type RecordedOp } from '../../src/device/recording-device.js';
import { OverlayDevice } from '../../src/device/overlay-device.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { JournalManager } from '../../src/journal/manager.js';
import type { Level } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import type { Policy } from '../../src/format/types.js';
import type { JournalAckPoint, UnsafeJournalSkip } from '../../src/engine/journal-policy-write.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES } from '../../src/units.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import type { UnsafeProxySkip } from '../../src/engine/journal-proxy.js';
import { cloneDevices, makeMemoryMembers } from './memory-array.js';

export interface ExplorerOptions {
  level: Level;
  raidDevices: number;
  seed: number;
  states: number;
  batches?: number;
  writesPerBatch?: number;
  /**
   * A batch's writes run in this many waves, one after another (default 1: all at once), so
   * stripes complete while later writers still need records: with a small cleanBatchStripes
   * the journal then flushes batches of them in the background and a later record drops them.
   */
  waves?: number;
  /** dirty-log: the journal's clean batch (default the engine's). */
  cleanBatchStripes?: number;
  unsafeSkipBarrier?: boolean;
  /** Stop after this many failures (a broken engine fails almost everywhere). */
  failuresMax?: number;
  /** What the recorded run's members are: memory (default), image files, or loop devices over image files (root). */
  members?: 'memory' | 'files' | 'loop';
  /** The consistency policy (default dirty-log). */
  policy?: Policy;
  /** journal policy: when a write's promise resolves. */
  ackPoint?: JournalAckPoint;
  /** journal policy, test only: leave a journal step out (the negative control). */
  unsafeJournalSkip?: UnsafeJournalSkip;
  /** Also recover each crashed image with each member lost (each pair too on RAID-6). */
  loseMembers?: boolean;
  /**
   * journal policy: member `index` vanishes (every I/O fails) once batch `afterBatch` is under
   * way, so later writes run through its proxy; crashed images are then recovered with it back,
   * with it lost, and on RAID-6 also without it and each other member.
   */
  failMember?: { index: number; afterBatch: number };
  /** Test only: what the proxies do with what they are handed (the negative control). */
  unsafeProxySkip?: UnsafeProxySkip;
}

export interface ExplorerResult {
  statesExplored: number;
  logLength: number;
  failures: string[];
  tornBlocksFound: number;
  stripesRecovered: number;
  /** journal policy: updates in flight handed to a failed member's proxy during the recorded run. */
  proxyPublished: number;
  /** dirty-log: member flushes the journal ran in the background for a batch of completed stripes. */
  backgroundFlushes: number;
}

interface Batch {
  /** Log length when the batch began, and when its flush completed (acknowledged). */
  startPos: number;
  ackPos: number;
  touchedBlocks: Set<number>;
  /** Each write's blocks and the log length when its promise resolved (acknowledged). */
  acks: { blocks: number[]; ackPos: number }[];
  before: Buffer;
  after: Buffer;
}

type Variant = 'all' | 'torn' | 'subset';

/** The member sets a crashed image is recovered without: none, and with loseMembers each one (each pair on RAID-6). */
function lossSets(raidDevices: number, level: Level, loseMembers: boolean): number[][] {
  const sets: number[][] = [[]];
  if (!loseMembers) return sets;
  for (let a = 0; a < raidDevices; a++) sets.push([a]);
  if (level === 6) for (let a = 0; a < raidDevices; a++) for (let b = a + 1; b < raidDevices; b++) sets.push([a, b]);
  return sets;
}

export async function exploreCrashStates(options: ExplorerOptions): Promise<ExplorerResult> {
  const rng = new Rng(options.seed);
  const chunkSizeBytes = BLOCK_SIZE_BYTES;
  const policy = options.policy ?? 'dirty-log';
  const base = await makeMemoryMembers({ level: options.level, raidDevices: options.raidDevices, chunkSizeBytes, memberSizeBytes: 4 * 1024 * 1024 + 24 * chunkSizeBytes, policy, dataJournalBytes: 256 * 1024 });
  // Some initial contents, written and closed cleanly: the frozen base image.
  {
    const { array } = await assembleDevices(base, { journal: { idleCleanMs: 0 } });
    await array.write(0, rng.bytes(array.sizeBytes));
    await array.close();
  }
  const baseImages = base.map((device) => Buffer.from(device.bytes));

  // The recorded run.
  const log: RecordedOp[] = [];
  const members = await liveMembers(options.members ?? 'memory', baseImages, base);
  try {
    // A vanished member's failed writes never reach the log (the recording sits above the fault).
    const faults = members.devices.map((device, i) => new FaultDevice(new SlowDurableWrites(device, new Rng(options.seed + i))));
    const live = faults.map((device, i) => new RecordingDevice(device, i, log));
    return await exploreRun(options, rng, live, log, baseImages, faults);
  } finally {
    await members.release();
  }
}

/**
 * Durable writes (the journal's records) and member flushes complete a few turns of the event
 * loop late, as an O_DSYNC write or an fdatasync takes longer than a buffered write: writes
 * issued meanwhile complete first, so a writer released before its record completed (the
 * barrier removed), or a stripe dropped from the record before its member flush ended, shows
 * in the log.
 */
class SlowDurableWrites implements BlockDevice {
  constructor(private readonly inner: BlockDevice, private readonly rng: Rng) {}

  get path(): string { return this.inner.path; }
  get sizeBytes(): number { return this.inner.sizeBytes; }
  read(buf: Uint8Array, offsetBytes: number): Promise<void> { return this.inner.read(buf, offsetBytes); }
  write(buf: Uint8Array, offsetBytes: number): Promise<void> { return this.inner.write(buf, offsetBytes); }
  close(): Promise<void> { return this.inner.close(); }

  async writeDurable(buf: Uint8Array, offsetBytes: number): Promise<void> {
    await this.inner.writeDurable(buf, offsetBytes);
    await this.late();
  }

  async flush(): Promise<void> {
    await this.inner.flush();
    await this.late();
  }

  private async late(): Promise<void> {
    for (let turns = 1 + this.rng.int(4); turns > 0; turns--) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The recorded run's members, holding the base images: memory copies, or files (or loop devices on them) in a fresh directory. */
async function liveMembers(kind: 'memory' | 'files' | 'loop', baseImages: Buffer[], base: BlockDevice[]): Promise<{ devices: BlockDevice[]; release: () => Promise<void> }> {
  if (kind === 'memory') return { devices: cloneDevices(base as Parameters<typeof cloneDevices>[0]), release: async () => {} };
  const dir = mkdtempSync(join(tmpdir(), 'jraid-explorer-'));
  const loops: string[] = [];
  const devices: FileDevice[] = [];
  const release = async () => {
    for (const device of devices) await device.close().catch(() => {});
    for (const loop of loops) await execa('losetup', ['-d', loop], { reject: false });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const [i, image] of baseImages.entries()) {
      const file = join(dir, `m${i}.img`);
      await writeFile(file, image);
      let path = file;
      if (kind === 'loop') {
        path = (await execa('losetup', ['-f', '--show', file])).stdout.trim();
        loops.push(path);
      }
      devices.push(await FileDevice.open(path, { exclusive: true }));
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { devices, release };
}

async function exploreRun(options: ExplorerOptions, rng: Rng, live: RecordingDevice[], log: RecordedOp[], baseImages: Buffer[], faults: FaultDevice[]): Promise<ExplorerResult> {
  const { array } = await assembleDevices(live, { journal: { idleCleanMs: 0, unsafeSkipBarrier: options.unsafeSkipBarrier, cleanBatchStripes: options.cleanBatchStripes } });
  array.journalAckPoint = options.ackPoint ?? 'durable';
  if (options.unsafeJournalSkip) array.journalWriterForTests!.unsafeSkip = options.unsafeJournalSkip;
  if (options.unsafeProxySkip) array.journalWriterForTests!.unsafeProxySkip = options.unsafeProxySkip;
  const arrayBlocks = array.sizeBytes / BLOCK_SIZE_BYTES;
  let shadow = await array.read(0, array.sizeBytes);
  const batches: Batch[] = [];
  for (let b = 0; b < (options.batches ?? 8); b++) {
    const before = Buffer.from(shadow);
    const touched = new Set<number>();
    const writes: { offset: number; data: Buffer }[] = [];
    for (let attempt = 0; attempt < 40 && writes.length < (options.writesPerBatch ?? 5); attempt++) {
      const length = 1 + rng.int(rng.next() < 0.3 ? 3 * BLOCK_SIZE_BYTES : 12_000);
      const offset = rng.int(array.sizeBytes - length);
      const blocks = [];
      for (let block = Math.floor(offset / BLOCK_SIZE_BYTES); block * BLOCK_SIZE_BYTES < offset + length; block++) blocks.push(block);
      if (blocks.some((block) => touched.has(block))) continue; // block-disjoint within a batch
      blocks.forEach((block) => touched.add(block));
      writes.push({ offset, data: rng.bytes(length) });
    }
    const startPos = log.length;
    const acks: Batch['acks'] = [];
    // The member's writes fail from its third in this batch on (its writes mid-way through the batch's updates).
    const failing = options.failMember?.afterBatch === b ? faults[options.failMember.index]! : undefined;
    if (failing) failing.plan.failWritesAfter = failing.writesDone + 3;
    const waves = options.waves ?? 1;
    for (let wave = 0; wave < waves; wave++) {
      await Promise.all(writes.filter((_, i) => i % waves === wave).map(async (write) => {
        await array.write(write.offset, write.data);
        const blocks = [];
        for (let block = Math.floor(write.offset / BLOCK_SIZE_BYTES); block * BLOCK_SIZE_BYTES < write.offset + write.data.length; block++) blocks.push(block);
        acks.push({ blocks, ackPos: log.length });
      }));
    }
    await array.flush();
    if (failing) failing.dead = true;
    for (const write of writes) write.data.copy(shadow, write.offset);
    batches.push({ startPos, ackPos: log.length, touchedBlocks: touched, acks, before, after: Buffer.from(shadow) });
  }
  const proxyPublished = array.journalProxies.reduce((sum, proxy) => sum + proxy.stats.published, 0);
  const backgroundFlushes = array.journal instanceof JournalManager ? array.journal.stats.backgroundFlushes : 0;
  await array.close();
  shadow = Buffer.from(shadow);

  const result: ExplorerResult = { statesExplored: 0, logLength: log.length, failures: [], tornBlocksFound: 0, stripesRecovered: 0, proxyPublished, backgroundFlushes };
  const variants: Variant[] = ['all', 'torn', 'subset', 'subset'];
  const losses = options.failMember
    // Also with it back (a transient failure, the member returning at the restart).
    ? [[], [options.failMember.index], ...(options.level === 6 ? Array.from({ length: options.raidDevices }, (_, a) => a).filter((a) => a !== options.failMember!.index).map((a) => [options.failMember!.index, a]) : [])]
    : lossSets(options.raidDevices, options.level, options.loseMembers ?? false);
  const strict = (options.policy ?? 'dirty-log') === 'journal';
  // Fewer states than cuts: cuts spread over the whole log (each round from another offset).
  const stride = Math.max(1, Math.floor((log.length * losses.length) / options.states));
  let round = 0;
  while (result.statesExplored < options.states && result.failures.length < (options.failuresMax ?? 5)) {
    for (let cut = 1 + (round % stride); cut <= log.length && result.statesExplored < options.states && result.failures.length < (options.failuresMax ?? 5); cut += stride) {
      // Every variant in every round when cuts are strided (else one variant a round, as before).
      const variant = variants[(round + (stride > 1 ? Math.floor(cut / stride) : 0)) % variants.length]!;
      if (variant === 'torn' && (log[cut - 1]!.kind !== 'write' || log[cut - 1]!.kind === 'write' && (log[cut - 1] as { data: Buffer }).data.length <= SECTOR_SIZE_BYTES)) continue;
      for (const lost of losses) {
        const stateSeed = options.seed * 1_000_003 + round * 100_003 + cut;
        const problem = await checkState(baseImages, log, cut, variant, new Rng(stateSeed), batches, shadow, arrayBlocks, result, lost, strict);
        result.statesExplored++;
        if (problem) result.failures.push(`seed ${options.seed} cut ${cut}/${log.length} variant ${variant} lost [${lost.join(',')}] (state seed ${stateSeed}): ${problem}`);
      }
    }
    round++;
  }
  return result;
}

async function checkState(
  baseImages: Buffer[], log: RecordedOp[], cut: number, variant: Variant, rng: Rng,
  batches: Batch[], finalShadow: Buffer, arrayBlocks: number, result: ExplorerResult,
  lost: number[] = [], strict = false,
): Promise<string | undefined> {
  const overlays = baseImages.map((image, i) => new OverlayDevice(image, `mem${i}`));
  // A member's writes logged before a flush of it began, where that flush completed inside the
  // cut, are durable.
  const durableUntil = baseImages.map(() => 0);
  for (let i = 0; i < cut; i++) {
    const op = log[i]!;
    if (op.kind === 'flush') durableUntil[op.device] = Math.max(durableUntil[op.device]!, op.coversBefore);
  }
  for (let i = 0; i < cut; i++) {
    const op = log[i]!;
    if (op.kind !== 'write') continue;
    const isLast = i === cut - 1;
    const durable = i < durableUntil[op.device]! || op.durable;
    if (!durable && variant === 'subset' && !isLast && rng.next() < 0.5) continue;
    if (isLast && variant === 'torn') {
      const sectors = op.data.length / SECTOR_SIZE_BYTES;
      const kept = 1 + rng.int(sectors - 1);
      overlays[op.device]!.writeSync(op.data.subarray(0, kept * SECTOR_SIZE_BYTES), op.offsetBytes);
      continue;
    }
    overlays[op.device]!.writeSync(op.data, op.offsetBytes);
  }

  let array;
  try {
    ({ array } = await assembleDevices(overlays.filter((_, i) => !lost.includes(i)), { journal: { idleCleanMs: 0 } }));
  } catch (error) {
    return `assemble/recovery failed: ${(error as Error).message}`;
  }
  try {
    // With members lost there is nothing to check parity against: reading every block (the lost
    // members' through parity) is the check.
    if (lost.length === 0 && array.degradedRoles().length === 0) {
      const scrub = await scrubArray(array, { restart: true });
      if (scrub.mismatches.length > 0) return `parity inconsistent after recovery in stripe(s) ${scrub.mismatches.map((m) => m.stripe).join(', ')}`;
    }
    // A torn durable write (logged when it completed) had not completed at the crash: whatever
    // was acknowledged once it completed (at log length `cut`) was not acknowledged yet.
    const lastOp = log[cut - 1]!;
    const seen = variant === 'torn' && lastOp.kind === 'write' && lastOp.durable ? cut - 1 : cut;
    // The batch in progress at the cut (none when every batch was acknowledged).
    const current = batches.find((batch) => batch.ackPos > seen);
    const settled = current ? current.before : finalShadow;
    const acknowledged = new Set<number>();
    if (current && strict) for (const ack of current.acks) if (ack.ackPos <= seen) for (const block of ack.blocks) acknowledged.add(block);
    for (let block = 0; block < arrayBlocks; block++) {
      const at = block * BLOCK_SIZE_BYTES;
      const old = settled.subarray(at, at + BLOCK_SIZE_BYTES);
      const inFlight = current !== undefined && current.touchedBlocks.has(block);
      let content: Buffer | undefined;
      try {
        content = await array.read(at, BLOCK_SIZE_BYTES);
      } catch (error) {
        if ((error as { code?: string }).code !== 'E_BAD_BLOCK') throw error;
        if (strict) return `block ${block} reads as EIO (the journal policy never gives EIO)`;
        if (!inFlight) return `block ${block} reads as EIO but no write was in flight there`;
        result.tornBlocksFound++;
        continue;
      }
      if (acknowledged.has(block)) {
        if (content.equals(current!.after.subarray(at, at + BLOCK_SIZE_BYTES))) continue;
        return `block ${block} was acknowledged but reads as ${content.equals(old) ? 'its old content (lost)' : 'neither old nor new'}`;
      }
      if (content.equals(old)) continue;
      if (inFlight && content.equals(current.after.subarray(at, at + BLOCK_SIZE_BYTES))) continue;
      return inFlight ? `block ${block} is neither its old nor its new content (torn, undetected)` : `block ${block} (acknowledged or untouched) changed`;
    }
    return undefined;
  } finally {
    await array.abandon();
  }
}
