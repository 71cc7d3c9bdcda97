// The NBD backend over an array, with the acknowledgement level ("toughness", seed 002):
//   durable  reply once data and parity are on stable storage (the write, then a group sync);
//   atomic   reply once the write's data and parity writes have completed on the members: a
//            daemon crash can no longer tear it; after a power loss a torn block is caught by
//            the journal's block checks and reads as EIO, never as garbage;
//   fast     reply once the whole request is buffered in the daemon (never before the whole
//            payload arrived, seed 003); its outcome is reported at the next FLUSH. The payload
//            is the NBD server's buffer: the reply says so (NbdEarlyAcknowledgement), and the
//            server keeps that buffer out of use, and counted, until the write has finished.
// FLUSH waits for every write received before it, then makes them durable; FUA makes that
// one write durable before its reply. Both keep their meaning at every level. The levels are
// the table ACKNOWLEDGEMENT below. Writes replied to before they finish (fast) are bounded:
// past FAST_WRITES_PENDING_MAX writes unfinished, a fast write's reply waits for room, so the
// client's own in-flight limit holds it back. The backend also says which RAID failures a
// client sees as which NBD error, so the NBD server itself knows nothing of RAID.

import type { RaidArray } from '../engine/raid-array.js';
import { decide, type DecisionTable } from '../decision-table.js';
import { JraidError, type ErrorCode } from '../errors.js';
import { MIB, assert } from '../units.js';
import { NBD_EIO } from './nbd-protocol.js';
import type { NbdBackend, NbdEarlyAcknowledgement, NbdWriteOptions } from './nbd-server.js';

export type Toughness = 'durable' | 'atomic' | 'fast';
export const TOUGHNESS_LEVELS: readonly Toughness[] = ['durable', 'atomic', 'fast'];

/** When a write's reply may go. */
export interface AckRule {
  /** The reply waits for the write's data and parity writes to complete (otherwise: once buffered, failure reported at the next FLUSH). */
  waitForWrite: boolean;
  /** Then a group sync makes it durable before the reply. */
  syncBeforeReply: boolean;
}

export const ACKNOWLEDGEMENT: DecisionTable<{ toughness: Toughness; fua: boolean }, AckRule> = {
  name: 'acknowledgement level',
  domains: { toughness: TOUGHNESS_LEVELS, fua: [false, true] },
  rows: [
    { when: { toughness: 'durable' }, then: { waitForWrite: true, syncBeforeReply: true } },
    { when: { toughness: 'atomic', fua: false }, then: { waitForWrite: true, syncBeforeReply: false } },
    { when: { toughness: 'fast', fua: false }, then: { waitForWrite: false, syncBeforeReply: false } },
    // FUA keeps its meaning at every level: that write is durable before its reply.
    { when: { toughness: ['atomic', 'fast'], fua: true }, then: { waitForWrite: true, syncBeforeReply: true } },
  ],
};

/** RAID failures a client is expected to meet, and the NBD error each becomes. */
export const NBD_ERROR_FOR_CODE: ReadonlyMap<ErrorCode, number> = new Map([
  ['E_BAD_BLOCK', NBD_EIO], // a block unreadable on every copy (recorded bad)
  ['E_ARRAY_FAILED', NBD_EIO], // too many members lost to serve I/O
]);

/** Marks an expected RAID failure with the NBD error it becomes (`nbdError`, which the server honours). */
function forNbd(error: unknown): unknown {
  const nbdError = error instanceof JraidError ? NBD_ERROR_FOR_CODE.get(error.code) : undefined;
  return nbdError === undefined ? error : Object.assign(error as JraidError, { nbdError });
}

const rethrowForNbd = (error: unknown): never => {
  throw forNbd(error);
};
/** Writes unfinished at once before a fast write's reply waits for one of them to finish. */
export const FAST_WRITES_PENDING_MAX = 1024;

/** Bytes of zeroes written per engine call for WRITE_ZEROES. */
const ZERO_CHUNK_BYTES = 8 * MIB;

export class ArrayBackend implements NbdBackend {
  private readonly array: RaidArray;
  readonly toughness: Toughness;
  /** ACKNOWLEDGEMENT's rows for this level, without and with FUA. */
  private readonly ackRules: { plain: AckRule; fua: AckRule };
  /** Writes received and not yet finished (fast mode replies before they finish). */
  private readonly pending = new Set<Promise<void>>();
  /** Early replies waiting for room under fastWritesPendingMax, first come first woken. */
  private readonly roomWaiters: (() => void)[] = [];
  /** A write that failed after its fast reply: reported by the next FLUSH. */
  private deferredFailure: unknown;
  private syncRunning: Promise<void> | undefined;
  private syncQueued: Promise<void> | undefined;
  writesDone = 0;
  syncsDone = 0;

  readonly fastWritesPendingMax: number;

  constructor(array: RaidArray, toughness: Toughness, options: { fastWritesPendingMax?: number } = {}) {
    this.array = array;
    this.toughness = toughness;
    this.ackRules = { plain: decide(ACKNOWLEDGEMENT, { toughness, fua: false }), fua: decide(ACKNOWLEDGEMENT, { toughness, fua: true }) };
    this.fastWritesPendingMax = options.fastWritesPendingMax ?? FAST_WRITES_PENDING_MAX;
    // The journal policy's engine acknowledges atomic writes at seed 002's step a8 (both journals
    // hold the update), durable ones (and fast ones, finished in the background) at a13.
    if (array.sb?.policy === 'journal') array.journalAckPoint = toughness === 'atomic' ? 'atomic' : 'durable';
    assert(Number.isSafeInteger(this.fastWritesPendingMax) && this.fastWritesPendingMax >= 1, 'fastWritesPendingMax >= 1');
  }

  /** Writes received and not yet finished. */
  get pendingCount(): number {
    return this.pending.size;
  }

  get sizeBytes(): number {
    return this.array.sizeBytes;
  }

  /** Fills the server's reply buffer in place (RaidArray.read settles only once no member read is left on it). */
  read(offsetBytes: number, lengthBytes: number, target: Buffer): Promise<Buffer> {
    return this.array.read(offsetBytes, lengthBytes, target).catch(rethrowForNbd);
  }

  async write(offsetBytes: number, data: Buffer, options: NbdWriteOptions): Promise<void | NbdEarlyAcknowledgement> {
    const rule = options.fua ? this.ackRules.fua : this.ackRules.plain;
    const fast = !rule.waitForWrite;
    // Counted as well as the server's payload bound: WRITE_ZEROES writes from no payload.
    // Room is checked and taken in one turn of the event loop: no two writers take the last place.
    if (fast) while (this.pending.size >= this.fastWritesPendingMax) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    const done = this.track(this.array.write(offsetBytes, data).then(() => { this.writesDone++; }, rethrowForNbd));
    if (fast) {
      assert(this.pending.size <= this.fastWritesPendingMax, `fast writes pending within their bound (${this.fastWritesPendingMax})`);
      done.catch((error: unknown) => { this.deferredFailure ??= error; });
      // The engine reads `data` until the write finishes: the server must not reuse it before.
      return { dataReleased: done };
    }
    await done;
    if (rule.syncBeforeReply) await this.sync();
  }

  /** FLUSH: every write received so far finished, then durable. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    if (this.deferredFailure !== undefined) {
      const failure = this.deferredFailure;
      this.deferredFailure = undefined;
      throw failure;
    }
    await this.sync();
  }

  /** jraid does not thin-provision: a discard is advisory and leaves the blocks as they are. */
  async trim(): Promise<void> {}

  async writeZeroes(offsetBytes: number, lengthBytes: number, options: { fua: boolean; noHole: boolean }): Promise<void> {
    const zeros = Buffer.alloc(Math.min(lengthBytes, ZERO_CHUNK_BYTES));
    for (let at = 0; at < lengthBytes; at += zeros.length) {
      const piece = Math.min(zeros.length, lengthBytes - at);
      await this.write(offsetBytes + at, zeros.subarray(0, piece), { fua: false });
    }
    if (options.fua) await this.flush();
  }

  /** Waits for writes in flight (stop, and the control socket's own writes). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private track(work: Promise<void>): Promise<void> {
    this.pending.add(work);
    // A finished write makes room for one early reply waiting (each waiter is an NBD request in
    // flight, so the waiters are bounded by the server's in-flight limits).
    const forget = () => { this.pending.delete(work); this.roomWaiters.shift()?.(); };
    work.then(forget, forget);
    return work;
  }

  /**
   * Group sync: one sync at a time; callers that arrive while one runs share the next one,
   * which starts when the running one ends (it may not cover writes that finished after it began).
   */
  private sync(): Promise<void> {
    if (!this.syncRunning) {
      this.syncRunning = this.array.flush().then(() => { this.syncsDone++; }, rethrowForNbd).finally(() => { this.syncRunning = undefined; });
      return this.syncRunning;
    }
    this.syncQueued ??= this.syncRunning.catch(() => {}).then(() => {
      this.syncQueued = undefined;
      return this.sync();
    });
    return this.syncQueued;
  }
}

export function parseToughness(text: string): Toughness {
  if (!(TOUGHNESS_LEVELS as readonly string[]).includes(text)) {
    throw new JraidError('E_USAGE', `unknown toughness "${text}"`, { hint: 'use durable, atomic or fast' });
  }
  return text as Toughness;
}
