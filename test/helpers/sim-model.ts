// The fault simulation's shadow of the array, and its checks on the member images.
//
// For every 4 KiB block of the array the model keeps the contents a read may return now, and
// the contents a read may return after a power loss: a write that completed but was not yet
// made durable by a flush (or close) may come back old or new, or torn, which jraid must
// record bad (EIO) rather than return. A write that failed leaves old or new. Writers in
// flight never overlap (block-disjoint), readers may: a read of a block under a write sees old
// or new. A read that sees one of several possible contents pins it (nothing is in flight there).

import { computeP, computeQ, reconstructRow } from '../../src/parity/parity.js';
import type { RaidArray } from '../../src/engine/raid-array.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { BLOCK_SIZE_BYTES } from '../../src/units.js';
import type { SimDevice } from './sim-device.js';

/**
 * A content a block may have, or EIO (jraid recorded it bad), or ANY: a block whose possible
 * contents grew past CANDIDATES_MAX (many failed partial writes on it, once the faults went
 * beyond the level's redundancy) is no longer checked until a write that covers it completes.
 */
export type Candidate = Buffer | 'EIO' | 'ANY';

/** Possible contents tracked per block, at most (each failed partial write can double them). */
export const CANDIDATES_MAX = 32;

interface BlockState {
  /** What a read may return now. */
  now: Candidate[];
  /** What a read may return after a crash and recovery. */
  afterCrash: Candidate[];
  /** Writes in flight on this block (at most one: writers are block-disjoint). */
  inflight: number;
  /** Sequence of the newest write started here (a flush covers only writes before it began). */
  lastWriteSeq: number;
  /** No write since the last flush or recovery: what a read sees now is what a crash leaves. */
  durable: boolean;
}

/** A read in flight: every content its blocks could have had at some moment while it ran. */
export interface ReadWindow {
  offsetBytes: number;
  lengthBytes: number;
  seen: Map<number, Candidate[]>;
  /** A write started on one of its blocks while it ran: what it saw cannot pin anything. */
  overlapped: Set<number>;
}

export interface WriteHandle {
  offsetBytes: number;
  data: Buffer;
  blocks: number[];
  newSets: Map<number, Candidate[]>;
}

function addUnique(into: Candidate[], more: readonly Candidate[]): Candidate[] {
  if (into.includes('ANY') || more.includes('ANY')) return ['ANY'];
  const out = [...into];
  for (const candidate of more) {
    if (!out.some((have) => have === candidate || (typeof have !== 'string' && typeof candidate !== 'string' && have.equals(candidate)))) out.push(candidate);
  }
  return out.length > CANDIDATES_MAX ? ['ANY'] : out;
}

export class ShadowModel {
  readonly sizeBytes: number;
  readonly blockCount: number;
  private readonly blocks: BlockState[];
  private writeSeq = 0;
  private readonly openReads = new Set<ReadWindow>();

  constructor(sizeBytes: number, initial?: Buffer) {
    this.sizeBytes = sizeBytes;
    this.blockCount = Math.ceil(sizeBytes / BLOCK_SIZE_BYTES);
    this.blocks = Array.from({ length: this.blockCount }, (_, b) => {
      const content = initial ? Buffer.from(initial.subarray(b * BLOCK_SIZE_BYTES, (b + 1) * BLOCK_SIZE_BYTES)) : Buffer.alloc(BLOCK_SIZE_BYTES);
      return { now: [content], afterCrash: [content], inflight: 0, lastWriteSeq: 0, durable: true };
    });
  }

  blocksOf(offsetBytes: number, lengthBytes: number): number[] {
    const out: number[] = [];
    for (let b = Math.floor(offsetBytes / BLOCK_SIZE_BYTES); b * BLOCK_SIZE_BYTES < offsetBytes + lengthBytes; b++) out.push(b);
    return out;
  }

  /** Whether a write over this range may start now (no write in flight on its blocks). */
  canWrite(offsetBytes: number, lengthBytes: number): boolean {
    return this.blocksOf(offsetBytes, lengthBytes).every((b) => this.blocks[b]!.inflight === 0);
  }

  isWriting(block: number): boolean {
    return this.blocks[block]!.inflight > 0;
  }

  startWrite(offsetBytes: number, data: Buffer): WriteHandle {
    const blocks = this.blocksOf(offsetBytes, data.length);
    const seq = ++this.writeSeq;
    const newSets = new Map<number, Candidate[]>();
    for (const b of blocks) {
      const state = this.blocks[b]!;
      const start = b * BLOCK_SIZE_BYTES;
      const from = Math.max(start, offsetBytes);
      const to = Math.min(start + BLOCK_SIZE_BYTES, offsetBytes + data.length);
      const whole = from === start && to === start + BLOCK_SIZE_BYTES;
      const next: Candidate[] = whole
        ? [Buffer.from(data.subarray(from - offsetBytes, to - offsetBytes))]
        // A partial write keeps a bad block bad: only a whole-block write clears it.
        : addUnique([], state.now.map((candidate) => {
          if (typeof candidate === 'string') return candidate; // EIO stays EIO; ANY stays ANY
          const merged = Buffer.from(candidate);
          data.copy(merged, from - start, from - offsetBytes, to - offsetBytes);
          return merged;
        }));
      newSets.set(b, next);
      state.inflight++;
      state.lastWriteSeq = seq;
      state.durable = false;
      state.now = addUnique(state.now, next);
      for (const window of this.openReads) {
        const seen = window.seen.get(b);
        if (seen) {
          window.seen.set(b, addUnique(seen, next));
          window.overlapped.add(b);
        }
      }
      // Not durable until a flush: a crash may leave it old, new or torn (EIO).
      state.afterCrash = addUnique(addUnique(state.afterCrash, next), ['EIO']);
    }
    return { offsetBytes, data, blocks, newSets };
  }

  /** The write completed (acknowledged): a read now sees only the new content. */
  ackWrite(handle: WriteHandle): void {
    for (const b of handle.blocks) {
      const state = this.blocks[b]!;
      state.inflight--;
      state.now = handle.newSets.get(b)!;
    }
  }

  /** The write failed: each block may be old or new until rewritten. */
  failWrite(handle: WriteHandle): void {
    for (const b of handle.blocks) this.blocks[b]!.inflight--;
  }

  /** A flush begins: it covers the writes completed by now. */
  beginFlush(): { seq: number; inflight: Set<number> } {
    const inflight = new Set<number>();
    this.blocks.forEach((state, b) => { if (state.inflight > 0) inflight.add(b); });
    return { seq: this.writeSeq, inflight };
  }

  /** A flush completed: blocks whose writes had all completed when it began are durable as they read now. */
  flushed(start: { seq: number; inflight: ReadonlySet<number> }): void {
    for (const [b, state] of this.blocks.entries()) {
      if (state.inflight === 0 && !start.inflight.has(b) && state.lastWriteSeq <= start.seq) {
        state.afterCrash = [...state.now];
        state.durable = true;
      }
    }
  }

  get currentSeq(): number {
    return this.writeSeq;
  }

  /** A read starts: it may see any content its blocks have from now until it ends. */
  beginRead(offsetBytes: number, lengthBytes: number): ReadWindow {
    const window: ReadWindow = { offsetBytes, lengthBytes, seen: new Map(), overlapped: new Set() };
    for (const b of this.blocksOf(offsetBytes, lengthBytes)) window.seen.set(b, [...this.blocks[b]!.now]);
    this.openReads.add(window);
    return window;
  }

  /** A crash: writes in flight are abandoned; each block may now be any of its after-crash contents. */
  crashed(): void {
    this.openReads.clear();
    for (const state of this.blocks) {
      state.inflight = 0;
      state.now = [...state.afterCrash];
      state.durable = true;
    }
  }

  /**
   * After recovery: blocks jraid lists bad read EIO (allowed only where the model allows EIO, or
   * where `lost` says forced recovery gave them up); the rest cannot be EIO. Returns problems.
   */
  recovered(badBlocks: ReadonlySet<number>, lost: ReadonlySet<number>): string[] {
    const problems: string[] = [];
    this.blocks.forEach((state, b) => {
      if (badBlocks.has(b)) {
        if (!lost.has(b) && !state.now.includes('EIO') && !state.now.includes('ANY')) problems.push(`block ${b} recorded bad after recovery, but nothing in flight or lost could have torn it`);
        state.now = ['EIO'];
      } else {
        const readable = state.now.filter((candidate) => candidate !== 'EIO');
        if (state.now.includes('ANY')) readable.splice(0, readable.length, 'ANY');
        if (readable.length === 0) problems.push(`block ${b} must read EIO (recorded bad) but recovery forgot it`);
        state.now = readable.length > 0 ? readable : state.now;
      }
      state.afterCrash = [...state.now];
    });
    return problems;
  }

  /** Forced recovery gave these blocks up: they read EIO, whatever was acknowledged. */
  giveUp(blocks: Iterable<number>): void {
    for (const b of blocks) {
      const state = this.blocks[b]!;
      state.now = addUnique(state.now, ['EIO']);
      state.afterCrash = addUnique(state.afterCrash, ['EIO']);
    }
  }

  /** Blocks no longer checked (ANY): for the report. */
  get unverifiedBlocks(): number {
    return this.blocks.filter((state) => state.now.includes('ANY')).length;
  }

  /**
   * Checks what a read returned (or that it failed with E_BAD_BLOCK on `badBlock`) against what
   * its blocks could hold while it ran. Returns a problem, or undefined. A whole block that had
   * several possible contents, with no write on it while the read ran, is pinned to what it read.
   */
  checkRead(window: ReadWindow, got: Buffer | { badBlock: number }): string | undefined {
    this.openReads.delete(window);
    const offsetBytes = window.offsetBytes;
    if (!Buffer.isBuffer(got)) {
      const seen = window.seen.get(got.badBlock);
      if (!seen || !(seen.includes('EIO') || seen.includes('ANY'))) return `read at ${offsetBytes} failed E_BAD_BLOCK at block ${got.badBlock}, which the model holds readable`;
      return undefined;
    }
    for (const b of this.blocksOf(offsetBytes, got.length)) {
      const state = this.blocks[b]!;
      const seen = window.seen.get(b)!;
      const start = b * BLOCK_SIZE_BYTES;
      const from = Math.max(start, offsetBytes);
      const to = Math.min(start + BLOCK_SIZE_BYTES, offsetBytes + got.length);
      const bytes = got.subarray(from - offsetBytes, to - offsetBytes);
      if (seen.includes('ANY')) continue;
      const matching = seen.filter((candidate): candidate is Buffer => typeof candidate !== 'string' && candidate.subarray(from - start, to - start).equals(bytes));
      if (matching.length === 0) {
        const acknowledged = seen.length === 1 ? 'its acknowledged content' : `any of its ${seen.length} possible contents`;
        return `read at ${offsetBytes}: block ${b} bytes ${from - start}..${to - start} match none of ${acknowledged} (silently wrong data)`;
      }
      const whole = from === start && to === start + BLOCK_SIZE_BYTES;
      if (whole && !window.overlapped.has(b) && state.inflight === 0 && matching.length < state.now.length) {
        state.now = state.now.filter((candidate) => (matching as Candidate[]).includes(candidate));
        if (state.durable) state.afterCrash = [...state.now];
      }
    }
    return undefined;
  }

  possibleContents(block: number): readonly Candidate[] {
    return this.blocks[block]!.now;
  }
}

/**
 * Parity of every stripe, computed from the member images (not through jraid): every stripe
 * whose members are all in sync must have P (and Q) matching its data; on RAID-6 with one chunk
 * unavailable, the other parity must still agree. Returns the inconsistent stripes.
 */
export function inconsistentStripes(array: RaidArray, devices: ReadonlyMap<number, SimDevice>, skip: ReadonlySet<number> = new Set()): number[] {
  const g = array.geometry;
  const bad: number[] = [];
  for (let stripe = 0; stripe < g.stripeCount; stripe++) {
    if (skip.has(stripe)) continue;
    const map = g.stripeMap(stripe);
    const roles = map.qRole >= 0 ? [...map.dataRoles, map.pRole, map.qRole] : [...map.dataRoles, map.pRole];
    const chunks = roles.map((role) => {
      const index = array.memberIndexForRole(role);
      if (index < 0 || !array.readableDisk(role, stripe)) return null;
      const device = devices.get(index);
      if (!device || device.vanished) return null;
      return device.peek(array.disks.get(index)!.dataOffsetBytes + g.memberDataOffsetBytes(stripe, 0), g.chunkSizeBytes);
    });
    const k = g.dataDisks;
    const missing = chunks.filter((chunk) => chunk === null).length;
    if (missing === 0) {
      const data = chunks.slice(0, k) as Buffer[];
      if (!computeP(data).equals(chunks[k]!)) bad.push(stripe);
      else if (g.parityDisks === 2 && !computeQ(data, undefined, map.qExponents).equals(chunks[k + 1]!)) bad.push(stripe);
    } else if (g.parityDisks === 2 && missing === 1) {
      // Rebuild the missing chunk from one parity, check the other.
      const lostSlot = chunks.findIndex((chunk) => chunk === null);
      if (lostSlot < k) {
        const row = reconstructRow({ data: chunks.slice(0, k), p: chunks[k]!, q: null }, g.chunkSizeBytes, map.qExponents);
        if (!row.q!.equals(chunks[k + 1]!)) bad.push(stripe);
      } else {
        const data = chunks.slice(0, k) as Buffer[];
        const other = lostSlot === k ? computeQ(data, undefined, map.qExponents) : computeP(data);
        if (!other.equals(chunks[lostSlot === k ? k + 1 : k]!)) bad.push(stripe);
      }
    }
  }
  return bad;
}

/**
 * The superblocks on the members agree with the array's view: every in-use member that is not
 * faulty carries the array's events and member table. Returns problems.
 */
export async function superblockProblems(array: RaidArray, devices: ReadonlyMap<number, SimDevice>): Promise<string[]> {
  const problems: string[] = [];
  for (const [index, disk] of array.disks) {
    const entry = array.sb.members[index]!;
    if (entry.state === 'faulty') continue;
    const device = devices.get(index);
    if (!device || device.vanished) continue;
    const sb = (await readSuperblocks(new PeekDevice(device))).superblock;
    if (!sb) {
      problems.push(`${disk.path}: no valid superblock on an in-use member`);
      continue;
    }
    if (sb.events !== array.sb.events) problems.push(`${disk.path}: superblock events ${sb.events}, the array is at ${array.sb.events}`);
    const states = (members: typeof sb.members) => members.map((m) => `${m.role ?? '-'}:${m.state}`).join(',');
    if (states(sb.members) !== states(array.sb.members)) problems.push(`${disk.path}: member table ${states(sb.members)} differs from the array's ${states(array.sb.members)}`);
  }
  return problems;
}

/** Reads a SimDevice's current image synchronously through the BlockDevice interface (checks only). */
class PeekDevice {
  constructor(private readonly device: SimDevice) {}
  get path(): string { return this.device.path; }
  get sizeBytes(): number { return this.device.sizeBytes; }
  async read(buf: Uint8Array, offsetBytes: number): Promise<void> { buf.set(this.device.peek(offsetBytes, buf.length)); }
  async write(): Promise<void> { throw new Error('read only'); }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
