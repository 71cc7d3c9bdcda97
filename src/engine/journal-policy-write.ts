// The journal policy's write path (seed 002 claim 5), under the stripe's lock. A stripe write is
// split into updates, each some rows of one data chunk (at most UPDATE_ROWS_MAX), run one after
// the other. For each update:
//
//   data manager (the data chunk's member)       parity managers (P, and Q on RAID-6)
//   a1  read the old data (or rebuild it)        b3  read the old parity
//   a4/a5 new data to its new address in the     b1/b4 the delta (old XOR new data, claim 8)
//       journal, entry "issued"; flush               to the journal, entry "received"; flush
//   a10/a14 entry "completed"; flush             b5-b11 new parity (old parity XOR the delta,
//                                                    times g^i for Q) to its new address,
//                                                    entry "completed"; flush
//   a11/b10 once both sides completed: the in-place copies rewritten
//   a14/b13 the journal space freed at the next checkpoint (journal/data-journal.ts)
//
// Each step's flush is shared with every other step on that member (group commit). The write
// is acknowledged (`acked`) at the level asked: `durable` once every side completed (a13),
// `atomic` once the data side completed and every parity side holds the delta (a8: either side
// alone now rolls it forward, journal/data-journal-plan.ts). `fast` is the daemon's (it replies
// before the write, and only FLUSH/FUA wait). A member whose journal write fails is failed, and
// a proxy takes its manager's place (journal-proxy.ts): every update in flight is published to
// it, and it and every later update go on without that member, degraded; the proxy marks their
// stripes for the member's return. Recovery reads the other side.

import { DeviceIoError } from '../device/block-device.js';
import type { StripeMap } from '../geometry/geometry.js';
import { computeP, computeQ, gfMulXorInto, reconstructRow, xorInto } from '../parity/parity.js';
import { gfPow2 } from '../parity/gf256.js';
import { UPDATE_ROWS_MAX, type DataJournal, type Reservation } from '../journal/data-journal.js';
import type { DataJournalSide } from '../format/data-journal-entry.js';
import { JraidError } from '../errors.js';
import { BLOCK_SIZE_BYTES, assert } from '../units.js';
import type { MemberDisk } from './member-disk.js';
import { ProxyManager, type UnsafeProxySkip } from './journal-proxy.js';
import { slotRoles, type StripeHost } from './stripe-host.js';
import type { StripePiece } from './write-path.js';

/** When a journal-policy write is acknowledged (the engine's part of toughness). */
export type JournalAckPoint = 'durable' | 'atomic';

export interface JournalPolicyHost extends StripeHost {
  readonly dataJournal: DataJournal | undefined;
  readonly journalAckPoint: JournalAckPoint;
}

/** Some rows of one data chunk: one update. */
interface Update {
  dataIndex: number;
  rowFirst: number;
  rowCount: number;
  /** The new bytes; none for a repair that keeps the chunk's data and remakes parity. */
  piece: StripePiece | undefined;
  /**
   * A scrub repair: the row's parity is remade from its data (the old parity is wrong, or a data
   * block is), so the delta cannot come from the old parity. The data side completes before any
   * parity side hears of the update, and the delta is taken against the data the old parity
   * implies, which is what recovery rebuilds a lost data member's old block from.
   */
  repair?: boolean;
}

/** One manager's part in an update. */
interface Side {
  side: DataJournalSide;
  role: number;
  slot: number;
  disk: MemberDisk | undefined;
  failed: boolean;
  /** The proxy that took this side over (its member failed): no more steps or writes to it. */
  proxy: ProxyManager | undefined;
}

/** An update in flight, as its managers would publish it to a proxy. */
interface InFlightUpdate {
  stripe: number;
  seq: number;
  sides: Side[];
  /** Proxies it was handed to. */
  proxies: Set<ProxyManager>;
  /** Their marks: durable before the update rewrites any in-place copy. */
  handedOver: Promise<void>[];
}

/** Test only: a journal step left out, to prove the crash explorer catches it. */
export type UnsafeJournalSkip = 'none' | 'data-completed-flush' | 'apply-before-completed' | 'repair-in-place';

export class JournalPolicyWriter {
  private readonly host: JournalPolicyHost;
  unsafeSkip: UnsafeJournalSkip = 'none';
  /** Test only: given to every proxy made from now on (to prove a test catches a proxy that drops what it is handed). */
  unsafeProxySkip: UnsafeProxySkip = 'none';
  /** The proxies serving lost roles, by role. */
  private readonly proxyByRole = new Map<number, ProxyManager>();
  private readonly inFlight = new Set<InFlightUpdate>();

  constructor(host: JournalPolicyHost) {
    this.host = host;
  }

  /** The proxies serving now (detail, tests). */
  get proxies(): readonly ProxyManager[] {
    this.retireProxies();
    return [...this.proxyByRole.values()];
  }

  /**
   * Member `index` (role `role`) is failing: a proxy takes its manager's place, and every update
   * in flight is published to it. Resolves once the proxy's marks of them are durable. Called
   * again once the faulty mark is durable (`committed`).
   */
  async replaceWithProxy(index: number, role: number, path: string, committed: boolean): Promise<void> {
    let proxy = this.proxyByRole.get(role);
    if (!proxy || proxy.memberIndex !== index) {
      proxy = new ProxyManager({ markStripe: (stripe) => this.host.writeIntent.markStripe(stripe) }, role, index, path);
      proxy.unsafeSkip = this.unsafeProxySkip;
      this.proxyByRole.set(role, proxy);
    }
    if (committed) proxy.failureCommitted = true;
    const marks: Promise<void>[] = [];
    for (const update of this.inFlight) if (!update.proxies.has(proxy)) marks.push(this.handOver(update, proxy, 'publish'));
    await Promise.all(marks);
  }

  /** Hands `update` to `proxy`: it takes the update's side of its role, and marks its stripe. */
  private handOver(update: InFlightUpdate, proxy: ProxyManager, how: 'publish' | 'serve'): Promise<void> {
    update.proxies.add(proxy);
    const side = update.sides.find((candidate) => candidate.role === proxy.role);
    if (side) side.proxy = proxy;
    const published = { stripe: update.stripe, seq: update.seq, side: side?.side };
    const mark = how === 'publish' ? proxy.publish(published) : proxy.serve(published);
    update.handedOver.push(mark);
    return mark;
  }

  /** Proxies whose role has a writable member again (re-added or replaced) retire. */
  private retireProxies(): void {
    for (const [role, proxy] of this.proxyByRole) {
      if (proxy.failureCommitted && this.host.members.writableDisk(role)) this.proxyByRole.delete(role);
    }
  }

  /** Every update stops once more roles are lost (or being lost) than the level survives. */
  private checkRunning(): void {
    this.host.checkAlive();
    this.retireProxies();
    const lost = new Set([...this.host.members.lostRoles(), ...this.proxyByRole.keys()]);
    if (lost.size > this.host.geometry.parityDisks) {
      throw new JraidError('E_ARRAY_FAILED', `array has lost ${lost.size} members; level ${this.host.members.sb.level} survives ${this.host.geometry.parityDisks}`, {
        hint: 'every manager stopped; bring back a member with assemble --force (recovery reviews the journals); nothing acknowledged has been lost',
      });
    }
  }

  /**
   * Writes `pieces` of one stripe. `acked` resolves at the acknowledgement point; `finished` once
   * every update is applied in place. The caller holds the stripe's lock until `finished`.
   */
  writeStripe(stripe: number, pieces: StripePiece[]): { acked: Promise<void>; finished: Promise<void> } {
    let ack!: () => void;
    let nack!: (error: unknown) => void;
    const acked = new Promise<void>((resolve, reject) => { ack = resolve; nack = reject; });
    const updates = splitUpdates(pieces, this.host.geometry.blocksPerChunk);
    const finished = (async () => {
      try {
        for (let i = 0; i < updates.length; i++) {
          const last = i === updates.length - 1;
          await this.runUpdate(stripe, updates[i]!, last ? ack : () => {});
        }
      } catch (error) {
        nack(error);
        throw error;
      }
      ack();
    })();
    finished.catch(() => {}); // the caller sees the error through `acked` or its own await
    return { acked, finished };
  }

  /**
   * Scrub --repair of one stripe, journaled like a write so that a crash mid-way plus a lost
   * member cannot tear it: each repaired row is an update that keeps the data (or takes a
   * corrected data block) and remakes parity from it (Update.repair). Call under the stripe's lock.
   */
  async repairStripe(stripe: number, fixes: readonly { role: number; chunkOffsetBytes: number; block: Buffer }[]): Promise<void> {
    const B = BLOCK_SIZE_BYTES;
    const map = this.host.geometry.stripeMap(stripe);
    if (this.unsafeSkip === 'repair-in-place') {
      // The negative control: the repaired blocks written straight in place.
      for (const fix of fixes) await this.host.members.writableDisk(fix.role)?.writeData(this.host.geometry.memberDataOffsetBytes(stripe, fix.chunkOffsetBytes), fix.block);
      return;
    }
    const rows = new Map<number, Update>();
    for (const fix of fixes) {
      assert(fix.chunkOffsetBytes % B === 0 && fix.block.length === B, 'a repair is whole blocks');
      const row = fix.chunkOffsetBytes / B;
      const dataIndex = map.dataRoles.indexOf(fix.role);
      if (dataIndex >= 0) rows.set(row, { dataIndex, rowFirst: row, rowCount: 1, piece: { dataIndex, chunkOffsetBytes: fix.chunkOffsetBytes, data: fix.block }, repair: true });
      else if (!rows.has(row)) rows.set(row, { dataIndex: 0, rowFirst: row, rowCount: 1, piece: undefined, repair: true });
    }
    for (const update of [...rows.values()].sort((a, b) => a.rowFirst - b.rowFirst)) await this.runUpdate(stripe, update, () => {});
  }

  private async runUpdate(stripe: number, update: Update, ack: () => void): Promise<void> {
    const host = this.host;
    assert(host.dataJournal, 'the journal policy writes through its data journal');
    const g = host.geometry;
    assert(host.locks.isHeld(stripe), `stripe ${stripe} written under its lock`);
    this.checkRunning();
    const map = g.stripeMap(stripe);
    const k = g.dataDisks;
    const sides: Side[] = [{ side: 'data', role: map.dataRoles[update.dataIndex]!, slot: update.dataIndex, disk: undefined, failed: false, proxy: undefined }];
    sides.push({ side: 'p', role: map.pRole, slot: k, disk: undefined, failed: false, proxy: undefined });
    if (map.qRole >= 0) sides.push({ side: 'q', role: map.qRole, slot: k + 1, disk: undefined, failed: false, proxy: undefined });
    for (const side of sides) side.disk = host.members.writableDisk(side.role);
    // In flight from here: a member failing from now on has this update published to its proxy.
    // A role lost already (or being lost) is served by its proxy from the start.
    const inFlight: InFlightUpdate = { stripe, seq: -1, sides, proxies: new Set(), handedOver: [] };
    this.inFlight.add(inFlight);
    try {
      await this.runInFlight(inFlight, update, map, ack);
    } finally {
      this.inFlight.delete(inFlight);
    }
  }

  private async runInFlight(inFlight: InFlightUpdate, update: Update, map: StripeMap, ack: () => void): Promise<void> {
    const host = this.host;
    const dataJournal = host.dataJournal!;
    const g = host.geometry;
    const B = BLOCK_SIZE_BYTES;
    const k = g.dataDisks;
    const { stripe, sides } = inFlight;
    const lengthBytes = update.rowCount * B;
    const memberDataOffsetBytes = g.memberDataOffsetBytes(stripe, update.rowFirst * B);
    this.retireProxies();
    for (const role of host.members.lostRoles()) {
      if (this.proxyByRole.has(role)) continue;
      const index = host.members.memberIndexForRole(role);
      const proxy = new ProxyManager({ markStripe: (s) => host.writeIntent.markStripe(s) }, role, index, index >= 0 ? host.members.disks.get(index)?.path ?? '(missing)' : '(missing)');
      proxy.failureCommitted = true;
      proxy.unsafeSkip = this.unsafeProxySkip;
      this.proxyByRole.set(role, proxy);
    }
    for (const proxy of this.proxyByRole.values()) this.handOver(inFlight, proxy, 'serve');

    // a1/b3: the old data and parity rows (rebuilt where a member cannot give them).
    const old = await this.readOldRows(stripe, map, update.rowFirst, update.rowCount);
    const newData = Buffer.from(old[update.dataIndex]!);
    const piece = update.piece;
    if (piece) {
      const blockStart = update.rowFirst * B;
      const from = Math.max(piece.chunkOffsetBytes, blockStart);
      const to = Math.min(piece.chunkOffsetBytes + piece.data.length, blockStart + lengthBytes);
      piece.data.copy(newData, from - blockStart, from - piece.chunkOffsetBytes, to - piece.chunkOffsetBytes);
    }
    // a7: the delta, old XOR new (claim 8), and b6: the new parity from it.
    const delta = update.repair ? impliedByParity(old, map, update.dataIndex, update.rowCount) : Buffer.from(old[update.dataIndex]!);
    xorInto(delta, newData);
    const newParity = new Map<DataJournalSide, Buffer>();
    if (update.repair) {
      const remade = parityOfRows(old.slice(0, k).map((chunk, i) => i === update.dataIndex ? newData : chunk), map, update.rowCount);
      newParity.set('p', remade.p);
      if (remade.q) newParity.set('q', remade.q);
    } else {
      newParity.set('p', Buffer.from(old[k]!));
      xorInto(newParity.get('p')!, delta);
      if (map.qRole >= 0) {
        const q = Buffer.from(old[k + 1]!);
        gfMulXorInto(q, delta, gfPow2(map.qExponents[update.dataIndex]!));
        newParity.set('q', q);
      }
    }

    const present = sides.filter((side) => side.disk && !side.proxy);
    const { seq, reservations } = await dataJournal.begin(present.map((side) => ({
      member: side.disk!, entries: 2, payloadBlocks: side.side === 'data' ? update.rowCount : 2 * update.rowCount,
    })));
    inFlight.seq = seq;
    try {
      const base = { stripe, dataIndex: update.dataIndex, rowFirst: update.rowFirst, rowCount: update.rowCount, seq };
      // A side whose member failed is its proxy's from then on: no more steps on that member.
      // Failing the member publishes this update to the proxy (replaceWithProxy), which marks it.
      const step = async (side: Side, fn: (reservation: Reservation) => Promise<void>) => {
        if (!side.disk || side.failed || side.proxy) return;
        try {
          await fn(reservations.get(side.disk)!);
        } catch (error) {
          if (!(error instanceof DeviceIoError)) throw error;
          side.failed = true;
          await host.failMember(host.members.indexOfDisk(side.disk), `data-journal write failed: ${error.message}`);
        }
      };
      const manager = (side: Side) => dataJournal.manager(side.disk!);
      const appliedBelow = () => dataJournal.appliedBelow;
      const dataSide = sides[0]!;
      const paritySides = sides.slice(1);
      let paritiesReceived = 0;
      let atomicReached = false;
      const maybeAtomic = () => {
        if (atomicReached || host.journalAckPoint !== 'atomic') return;
        atomicReached = true;
        ack();
      };
      const dataDone = (async () => {
        // a4/a5: new data to its new address, "write issued"; a10/a14: "write completed".
        await step(dataSide, (r) => manager(dataSide).journalStep(r.entries[0]!, { ...base, appliedBelow: appliedBelow(), step: 'issued', side: 'data', payloadBlock: r.payloadFirst }, newData));
        await step(dataSide, (r) => this.unsafeSkip === 'data-completed-flush'
          // The negative control: "completed" written but not waited durable.
          ? manager(dataSide).writeEntry(r.entries[1]!, { ...base, appliedBelow: appliedBelow(), step: 'data-completed', side: 'data', payloadBlock: 0, payloadCrc: 0 })
          : manager(dataSide).journalStep(r.entries[1]!, { ...base, appliedBelow: appliedBelow(), step: 'data-completed', side: 'data', payloadBlock: 0 }));
      })();
      const received = paritySides.map(async (side) => {
        // A repair's parity sides start once its data side completed (see Update.repair).
        if (update.repair) await dataDone;
        // b1/b4: the update and its delta received.
        await step(side, (r) => manager(side).journalStep(r.entries[0]!, { ...base, appliedBelow: appliedBelow(), step: 'received', side: side.side, payloadBlock: r.payloadFirst }, delta));
        paritiesReceived++;
      });
      const parityDone = paritySides.map(async (side, i) => {
        await received[i];
        // b5-b11: the new parity to its new address, "parity update completed".
        await step(side, (r) => manager(side).journalStep(r.entries[1]!, { ...base, appliedBelow: appliedBelow(), step: 'parity-completed', side: side.side, payloadBlock: r.payloadFirst + update.rowCount }, newParity.get(side.side)!));
      });
      if (host.journalAckPoint === 'atomic') {
        await Promise.all([dataDone, ...received]);
        assert(paritiesReceived === paritySides.length, 'every parity side received the delta (or its member failed)');
        this.checkRunning();
        await host.members.stateDurable();
        maybeAtomic();
      }
      if (this.unsafeSkip !== 'apply-before-completed') await Promise.all([dataDone, ...parityDone]);
      this.checkRunning();
      // a13: both sides completed; the write is durable. A member failed on the way is durably faulty first.
      await host.members.stateDurable();
      if (host.journalAckPoint === 'durable') ack();
      // The proxies' marks of this update are durable before any in-place copy changes, and so
      // is the faulty mark of each member it was handed over for: a crash after this update's
      // in-place writes never brings that member back as in sync where it missed them.
      for (let seen = 0; seen < inFlight.handedOver.length;) {
        const count = inFlight.handedOver.length;
        await Promise.all(inFlight.handedOver.slice(seen));
        await Promise.all([...inFlight.proxies].map((proxy) => host.members.failureOf(proxy.memberIndex)?.catch(() => {})));
        seen = count;
      }
      await host.members.stateDurable();
      this.checkRunning();
      // a11/b10: the in-place copies rewritten from the buffers (the journal holds them too).
      await Promise.all(sides.map(async (side) => {
        if (!side.disk || side.failed || side.proxy) return;
        const bytes = side.side === 'data' ? newData : newParity.get(side.side)!;
        try {
          await side.disk.writeData(memberDataOffsetBytes, bytes);
        } catch (error) {
          if (!(error instanceof DeviceIoError)) throw error;
          await host.failMember(host.members.indexOfDisk(side.disk), `write error: ${error.message}`);
        }
      }));
      if (this.unsafeSkip === 'apply-before-completed') await Promise.all([dataDone, ...parityDone]);
      this.checkRunning();
      await host.members.stateDurable();
    } catch (error) {
      dataJournal.abandon(seq, error);
      throw error;
    }
    // a14/b13: the journal space of this update frees at the next checkpoint.
    dataJournal.applied(seq);
  }

  /**
   * The rows of every slot of the stripe (data 0..k-1, P, Q) as they are now: read, and rebuilt
   * from the others where a member is lost or its read fails.
   */
  private async readOldRows(stripe: number, map: StripeMap, rowFirst: number, rowCount: number): Promise<Buffer[]> {
    const host = this.host;
    const g = host.geometry;
    const B = BLOCK_SIZE_BYTES;
    const roles = slotRoles(map);
    const k = g.dataDisks;
    const hasQ = map.qRole >= 0;
    const memberDataOffsetBytes = g.memberDataOffsetBytes(stripe, rowFirst * B);
    const bufs: (Buffer | null)[] = roles.map(() => null);
    await Promise.all(roles.map(async (role, slot) => {
      const disk = host.members.readableDisk(role, stripe);
      if (!disk) return;
      const buf = Buffer.alloc(rowCount * B);
      try {
        await disk.readData(memberDataOffsetBytes, buf);
        bufs[slot] = buf;
      } catch (error) {
        if (!(error instanceof DeviceIoError)) throw error;
      }
    }));
    const missing = bufs.filter((buf) => buf === null).length;
    if (missing > g.parityDisks) {
      throw new JraidError('E_IO', `stripe ${stripe}: ${missing} members cannot be read, more than level ${host.members.sb.level} can rebuild`, {
        hint: 'check the members with examine; nothing was written to this stripe',
      });
    }
    if (missing === 0) return bufs as Buffer[];
    const out = roles.map(() => Buffer.alloc(rowCount * B));
    for (let r = 0; r < rowCount; r++) {
      const view = (slot: number) => bufs[slot] ? bufs[slot]!.subarray(r * B, (r + 1) * B) : null;
      const row = reconstructRow({
        data: Array.from({ length: k }, (_, i) => view(i)),
        p: view(k),
        q: hasQ ? view(k + 1) : undefined,
      }, B, map.qExponents);
      row.data.forEach((block, i) => out[i]!.set(block, r * B));
      out[k]!.set(row.p, r * B);
      if (hasQ) out[k + 1]!.set(row.q!, r * B);
    }
    return out;
  }
}

/** The data rows of `dataIndex` as the other data and the old P say they are (Q where P is missing). */
function impliedByParity(old: readonly Buffer[], map: StripeMap, dataIndex: number, rowCount: number): Buffer {
  const B = BLOCK_SIZE_BYTES;
  const k = map.dataRoles.length;
  const hasQ = map.qRole >= 0;
  const out = Buffer.alloc(rowCount * B);
  for (let r = 0; r < rowCount; r++) {
    const view = (slot: number) => Buffer.from(old[slot]!.subarray(r * B, (r + 1) * B));
    const row = reconstructRow({
      data: Array.from({ length: k }, (_, i) => i === dataIndex ? null : view(i)),
      p: view(k),
      q: hasQ ? view(k + 1) : undefined,
    }, B, map.qExponents);
    out.set(row.data[dataIndex]!, r * B);
  }
  return out;
}

/** Splits a stripe's pieces into updates of at most UPDATE_ROWS_MAX rows of one chunk. */
export function splitUpdates(pieces: readonly StripePiece[], blocksPerChunk: number): Update[] {
  const B = BLOCK_SIZE_BYTES;
  const updates: Update[] = [];
  for (const piece of pieces) {
    const firstRow = Math.floor(piece.chunkOffsetBytes / B);
    const endRow = Math.ceil((piece.chunkOffsetBytes + piece.data.length) / B);
    assert(endRow <= blocksPerChunk, 'a piece lies inside its chunk');
    for (let row = firstRow; row < endRow; row += UPDATE_ROWS_MAX) {
      updates.push({ dataIndex: piece.dataIndex, rowFirst: row, rowCount: Math.min(UPDATE_ROWS_MAX, endRow - row), piece });
    }
  }
  return updates;
}

/** Computes P (and Q) of whole rows: recovery's helper. */
export function parityOfRows(data: readonly Buffer[], map: StripeMap, rowCount: number): { p: Buffer; q: Buffer | undefined } {
  const B = BLOCK_SIZE_BYTES;
  const p = Buffer.alloc(rowCount * B);
  const q = map.qRole >= 0 ? Buffer.alloc(rowCount * B) : undefined;
  for (let r = 0; r < rowCount; r++) {
    const row = data.map((buf) => buf.subarray(r * B, (r + 1) * B));
    computeP(row, p.subarray(r * B, (r + 1) * B));
    if (q) computeQ(row, q.subarray(r * B, (r + 1) * B), map.qExponents);
  }
  return { p, q };
}
