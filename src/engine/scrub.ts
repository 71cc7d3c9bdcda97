// Scrub: read every stripe, check P (and Q), report mismatches; with repair, fix them. On
// RAID-4/5 a row whose P disagrees with its data is only a parity mismatch: single parity
// cannot tell which chunk is wrong (a bad data chunk and a bad P look the same), so the report
// names the stripe and its array bytes, and repair rewrites P from the data (as md does).
// On RAID-6, P and Q together name the one bad chunk of a row (as mdadm's raid6check does):
// with Pd = P ^ P' and Qd = Q ^ Q' (primes: recomputed from the data),
//   Pd = 0, Qd = 0  -> consistent
//   Pd != 0, Qd = 0 -> P is bad
//   Pd = 0, Qd != 0 -> Q is bad
//   both != 0 and Qd = g^z * Pd for one z < k on every byte -> data chunk z is bad, by Pd
//   anything else   -> more than one chunk is bad: P and Q are recomputed (data kept).
// The checkpoint (superblock scrubOffsetBytes) lets an interrupted scrub resume.

import { JraidError } from '../errors.js';
import { GF_LOG } from '../parity/gf256.js';
import { computeP, computeQ, xorInto } from '../parity/parity.js';
import { BLOCK_SIZE_BYTES, MIB } from '../units.js';
import { Throttle, type MaintenanceOptions } from './maintenance.js';
import type { StripeMap } from '../geometry/geometry.js';
import type { RaidArray } from './raid-array.js';

/** RAID-6 names the bad chunk (or 'unknown' when several are); RAID-4/5 can only say 'parity-mismatch'. */
export type BadChunk = 'P' | 'Q' | 'data' | 'unknown' | 'parity-mismatch';

export interface ScrubMismatch {
  stripe: number;
  /** The array bytes the stripe holds (its data chunks, in array order). */
  arrayOffsetBytes: number;
  arrayLengthBytes: number;
  /** Which chunk the check blames, and the member holding it (null when it cannot tell). */
  bad: BadChunk;
  role: number | null;
  path: string | null;
  /** Mismatched 4 KiB rows in this stripe. */
  blocks: number;
  repaired: boolean;
}

export interface ScrubOutcome {
  stripesChecked: number;
  resumedFromStripe: number;
  mismatches: ScrubMismatch[];
  mismatchBlocks: number;
  repaired: boolean;
  seconds: number;
}

export type RowVerdict = { bad: 'none' } | { bad: 'P' } | { bad: 'Q' } | { bad: 'data'; index: number } | { bad: 'unknown' } | { bad: 'parity-mismatch' };

/**
 * Classifies one row from its P and Q syndromes (the table in the header comment); without Q
 * (RAID-4/5) a non-zero Pd is only a mismatch. `exponents` are the stripe's Q exponents (data
 * chunk i has g^exponents[i]); default: i.
 */
export function classifyRow(pDelta: Uint8Array, qDelta: Uint8Array | undefined, dataCount: number, exponents?: readonly number[]): RowVerdict {
  const pZero = pDelta.every((byte) => byte === 0);
  if (!qDelta) return pZero ? { bad: 'none' } : { bad: 'parity-mismatch' };
  const qZero = qDelta.every((byte) => byte === 0);
  if (pZero && qZero) return { bad: 'none' };
  if (!pZero && qZero) return { bad: 'P' };
  if (pZero && !qZero) return { bad: 'Q' };
  let z = -1;
  for (let i = 0; i < pDelta.length; i++) {
    const p = pDelta[i]!;
    const q = qDelta[i]!;
    if (p === 0 && q === 0) continue;
    if (p === 0 || q === 0) return { bad: 'unknown' };
    const candidate = (GF_LOG[q]! - GF_LOG[p]! + 255) % 255;
    if (z === -1) z = candidate;
    else if (z !== candidate) return { bad: 'unknown' };
  }
  const index = exponents ? exponents.indexOf(z) : z;
  return z >= 0 && index >= 0 && index < dataCount ? { bad: 'data', index } : { bad: 'unknown' };
}

/**
 * Scrub reads a group of consecutive stripes with one read per member, up to this many bytes
 * per member read (at least one stripe): a read is a round trip to a thread (tens of
 * microseconds on this kind of machine), so fewer, larger reads let the member reads run at
 * the page cache's or the disks' speed.
 */
const SCRUB_MEMBER_READ_BYTES = MIB;
/** Groups in flight, each under its stripes' locks, so one's reads overlap another's check. */
const SCRUB_GROUPS_IN_FLIGHT = 2;
/** Groups are smaller where their lent buffers would pass this share of the pool. */
const SCRUB_GROUP_BYTES_MAX = 6 * MIB;

/** Runs `fn` on buffers lent by the pool, given back when it settles. */
async function withLent<T>(lending: Promise<Buffer[]>, array: RaidArray, fn: (lent: Buffer[]) => Promise<T> | T): Promise<T> {
  const lent = await lending;
  try {
    return await fn(lent);
  } finally {
    array.giveBackStripeChunks(lent);
  }
}

interface StripeCheck {
  found: ScrubMismatch[];
  /** Blocks to rewrite (repair only), each a copy that outlives the lent chunks. */
  fixes: { role: number; chunkOffsetBytes: number; block: Buffer }[];
}

interface StripeRead {
  stripe: number;
  map: StripeMap;
  roles: number[];
  chunks: Buffer[];
}

/** Reads one stripe whole into `lent` (from lendStripeChunks): undefined when a member failed to read. Call under its lock. */
async function readStripe(array: RaidArray, stripe: number, lent: Buffer[]): Promise<StripeRead | undefined> {
  const { map, roles, chunks } = await array.readStripeChunks(stripe, undefined, lent);
  return chunks.some((chunk) => chunk === null) ? undefined : { stripe, map, roles, chunks: chunks as Buffer[] };
}

/**
 * Checks one stripe read whole, with two spare chunks for the recomputed P and Q: what does not
 * match, and (with `repair`) the blocks to rewrite.
 */
function checkStripe(array: RaidArray, read: StripeRead, wholeP: Buffer, wholeQ: Buffer, repair: boolean): StripeCheck {
  const g = array.geometry;
  const chunkSizeBytes = g.chunkSizeBytes;
  const k = g.dataDisks;
  const hasQ = g.parityDisks === 2;
  const { stripe, map, roles, chunks } = read;
  const p = Buffer.alloc(BLOCK_SIZE_BYTES);
  const q = Buffer.alloc(BLOCK_SIZE_BYTES);
  const found = new Map<string, ScrubMismatch>();
  const fixes: { slot: number; offsetBytes: number; block: Buffer }[] = [];
  // Fast path: whole-chunk parity compares equal; rows are examined only on a mismatch.
  computeP(chunks.slice(0, k), wholeP);
  let consistent = wholeP.equals(chunks[k]!);
  if (consistent && hasQ) {
    computeQ(chunks.slice(0, k), wholeQ, map.qExponents);
    consistent = wholeQ.equals(chunks[k + 1]!);
  }
  for (let at = 0; !consistent && at < chunkSizeBytes; at += BLOCK_SIZE_BYTES) {
    const data = Array.from({ length: k }, (_, i) => chunks[i]!.subarray(at, at + BLOCK_SIZE_BYTES));
    const storedP = chunks[k]!.subarray(at, at + BLOCK_SIZE_BYTES);
    computeP(data, p);
    xorInto(p, storedP); // p is now Pd
    let qDelta: Buffer | undefined;
    if (hasQ) {
      computeQ(data, q, map.qExponents);
      xorInto(q, chunks[k + 1]!.subarray(at, at + BLOCK_SIZE_BYTES));
      qDelta = q;
    }
    const verdict = classifyRow(p, qDelta, k, map.qExponents);
    if (verdict.bad === 'none') continue;
    const slot = verdict.bad === 'P' ? k : verdict.bad === 'Q' ? k + 1 : verdict.bad === 'data' ? verdict.index : -1;
    const key = `${verdict.bad}:${slot}`;
    const role = slot >= 0 ? roles[slot]! : null;
    const mismatch = found.get(key) ?? {
      stripe, arrayOffsetBytes: stripe * chunkSizeBytes * k, arrayLengthBytes: chunkSizeBytes * k, bad: verdict.bad,
      role, path: role === null ? null : array.readableDisk(role, stripe)?.path ?? null, blocks: 0, repaired: false,
    };
    mismatch.blocks++;
    found.set(key, mismatch);
    if (!repair) continue;
    mismatch.repaired = true;
    if (verdict.bad === 'data') {
      const fixed = Buffer.from(data[verdict.index]!);
      xorInto(fixed, p); // D_z ^= Pd
      fixes.push({ slot, offsetBytes: at, block: fixed });
    } else {
      // P, Q, unknown or a single-parity mismatch: recompute parity from the data as it stands.
      fixes.push({ slot: k, offsetBytes: at, block: computeP(data) });
      if (hasQ) fixes.push({ slot: k + 1, offsetBytes: at, block: computeQ(data, undefined, map.qExponents) });
    }
  }
  return { found: [...found.values()], fixes: fixes.map((fix) => ({ role: roles[fix.slot]!, chunkOffsetBytes: fix.offsetBytes, block: fix.block })) };
}

export async function scrubArray(array: RaidArray, options: MaintenanceOptions & { repair?: boolean; restart?: boolean } = {}): Promise<ScrubOutcome> {
  const startedMs = Date.now();
  if (array.unrecovered !== 'none') {
    throw new JraidError('E_ARRAY_DIRTY', 'the array was not shut down cleanly: its parity awaits recovery, and a check now would report it', {
      hint: 'run jraid recover (or scrub --repair, which recovers first)',
    });
  }
  if (array.degradedRoles().length > 0) {
    throw new JraidError('E_ARRAY_DEGRADED', 'the array is degraded: parity cannot be checked on every stripe', { hint: 'rebuild the lost member first (jraid rebuild)' });
  }
  const g = array.geometry;
  const chunkSizeBytes = g.chunkSizeBytes;
  const k = g.dataDisks;
  // A read-only scrub keeps no checkpoint (it writes nothing), so it checks every stripe.
  const resumedFromStripe = options.restart || array.readOnly ? 0 : Math.floor(array.sb.scrubOffsetBytes / chunkSizeBytes);
  const throttle = new Throttle(options.maxSpeedBytesPerSecond);
  const checkpointMs = options.checkpointIntervalMs ?? 1000;
  let lastCheckpointMs = Date.now();
  const mismatches: ScrubMismatch[] = [];
  const repair = !!options.repair;
  /** One stripe on its own, under its lock: reads around a member that fails to read. */
  const checkAlone = async (stripe: number): Promise<StripeCheck> => {
    const lend = () => array.lendStripeChunks(stripe, 2);
    let checked = await withLent(lend(), array, async (lent) => {
      const read = await readStripe(array, stripe, lent);
      return read && checkStripe(array, read, lent[read.roles.length]!, lent[read.roles.length + 1]!, repair);
    });
    if (!checked && repair) {
      // A member that failed to read: rebuild those blocks from parity and rewrite them first.
      await array.repairUnreadable(stripe);
      checked = await withLent(lend(), array, async (lent) => {
        const read = await readStripe(array, stripe, lent);
        return read && checkStripe(array, read, lent[read.roles.length]!, lent[read.roles.length + 1]!, repair);
      });
    }
    if (!checked) {
      throw new JraidError('E_IO', `stripe ${stripe}: a member could not be read during scrub`, { hint: 'jraid scrub --repair rebuilds unreadable blocks from parity and rewrites them; see jraid detail' });
    }
    return checked;
  };
  /** A group of stripes under their locks: one read per member, or stripe by stripe after a read error. */
  const checkGroup = (first: number, count: number) => array.withStripes(first, count, async () => {
    const checks = await withLent(array.lendStripeSpan(count, 2), array, async (lent) => {
      const reads = await array.readStripeSpan(first, count, lent);
      return reads?.map((read) => checkStripe(array, read, lent[g.raidDevices]!, lent[g.raidDevices + 1]!, repair));
    }) ?? [];
    for (let stripe = first + checks.length; stripe < first + count; stripe++) checks.push(await checkAlone(stripe));
    for (const [i, checked] of checks.entries()) {
      mismatches.push(...checked.found);
      // The fixes are copies: the lent chunks are back in the pool before a write waits for its own.
      if (checked.fixes.length > 0) await array.repairBlocks(first + i, checked.fixes);
    }
  });
  const perGroupChunk = g.raidDevices * chunkSizeBytes;
  const groupStripes = Math.max(1, Math.min(Math.floor(SCRUB_MEMBER_READ_BYTES / chunkSizeBytes), Math.floor((SCRUB_GROUP_BYTES_MAX - 2 * chunkSizeBytes) / perGroupChunk)));
  // Progress and the checkpoint count only the stripes below the first group not done.
  const inFlight = new Set<Promise<void>>();
  const done = new Map<number, number>();
  let failure: unknown;
  let next = resumedFromStripe;
  let firstNotDone = resumedFromStripe;
  while (next < g.stripeCount || inFlight.size > 0) {
    while (failure === undefined && inFlight.size < SCRUB_GROUPS_IN_FLIGHT && next < g.stripeCount) {
      const first = next;
      const count = Math.min(groupStripes, g.stripeCount - first);
      next += count;
      const running: Promise<void> = checkGroup(first, count)
        .then(async () => {
          done.set(first, count);
          await throttle.account(count * g.stripeDataBytes);
        }, (error: unknown) => { failure ??= error; })
        .finally(() => inFlight.delete(running));
      inFlight.add(running);
    }
    if (inFlight.size > 0) await Promise.race(inFlight);
    if (failure !== undefined) {
      if (inFlight.size === 0) throw failure;
      continue;
    }
    const before = firstNotDone;
    for (let count = done.get(firstNotDone); count !== undefined; count = done.get(firstNotDone)) {
      done.delete(firstNotDone);
      firstNotDone += count;
    }
    if (firstNotDone === before) continue;
    options.onProgress?.({ doneBytes: firstNotDone * chunkSizeBytes * k, totalBytes: g.arraySizeBytes });
    if (!array.readOnly && Date.now() - lastCheckpointMs >= checkpointMs) {
      await array.commitSuperblocks((sb) => { sb.scrubOffsetBytes = firstNotDone * chunkSizeBytes; });
      lastCheckpointMs = Date.now();
    }
  }
  mismatches.sort((a, b) => a.stripe - b.stripe);
  if (!array.readOnly && array.sb.scrubOffsetBytes !== 0) await array.commitSuperblocks((sb) => { sb.scrubOffsetBytes = 0; });
  return {
    stripesChecked: g.stripeCount - resumedFromStripe,
    resumedFromStripe,
    mismatches,
    mismatchBlocks: mismatches.reduce((sum, m) => sum + m.blocks, 0),
    repaired: !!options.repair,
    seconds: (Date.now() - startedMs) / 1000,
  };
}
