// The NBD server: exports one block backend over the fixed newstyle protocol (nbd-protocol.ts)
// on Unix sockets and TCP. It knows nothing of RAID: anything with read/write/flush/trim/
// writeZeroes can be served, and jraid's array is one such backend.
//
// Each connection parses every complete request a socket read delivers, runs each as soon as it
// is whole (its write payload received), and answers with simple replies, which may leave out of
// order: replies that complete in the same turn of the event loop leave together, in one corked
// write. Memory is bounded by named limits: requests in flight per connection, payload bytes per
// connection and across the server (nbd-buffers.ts). When a request does not fit, the connection
// stops reading its socket until room comes back (backpressure).
// In a steady state a connection allocates no buffers: requests live in a fixed set of slots
// made when the connection enters transmission, each with its own reply header; payloads live in
// the connection's pool; replies without data are copied into one of two batch buffers.
// Descriptors are bounded too: a client must finish its handshake within handshakeTimeoutMs,
// and at most connectionsMax connections are open (silent clients make room for new ones).
//
// Not supported, on purpose: TLS (NBD_OPT_STARTTLS is refused with NBD_REP_ERR_UNSUP; serve on a
// Unix socket or loopback), structured replies and so metadata contexts and NBD_CMD_BLOCK_STATUS
// (NBD_OPT_STRUCTURED_REPLY is refused; clients fall back to simple replies, as the spec requires
// them to), NBD_CMD_CACHE, NBD_CMD_FLAG_FAST_ZERO and NBD_CMD_FLAG_DF (never advertised, so EINVAL),
// and oldstyle negotiation.

import net from 'node:net';
import type { Duplex } from 'node:stream';
import { JraidError } from '../errors.js';
import { KIB, MIB, assert } from '../units.js';
import { PayloadBudget, PayloadPool } from './nbd-buffers.js';
import {
  CLIENT_FLAGS_SIZE_BYTES, NBD_CMD_DISC, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM,
  NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EIO, NBD_ENOSPC, NBD_EPERM, NBD_ERRORS, NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_HAS_FLAGS, NBD_FLAG_NO_ZEROES,
  NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES, NBD_INFO_DESCRIPTION, NBD_INFO_NAME,
  NBD_OPT_ABORT, NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPT_STARTTLS, NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_POLICY, NBD_REP_ERR_TOO_BIG, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_INFO, NBD_REP_SERVER,
  NBD_REQUEST_MAGIC, NBD_SIMPLE_REPLY_MAGIC, NBD_STRING_BYTES_MAX, OPTION_HEADER_SIZE_BYTES, REQUEST_HEADER_SIZE_BYTES, REQUEST_OK,
  REQUEST_WRITE_TOO_LONG, SIMPLE_REPLY_HEADER_SIZE_BYTES, blockSizeConstraintsProblem, decodeInfoRequest, decodeOptionHeader,
  encodeExportNameReply, encodeGreeting, encodeInfoBlockSize, encodeInfoDescription, encodeInfoExport, encodeInfoName, encodeOptionReply,
  encodeServerReplyData, requestRule, requestRuleError, requestRuleReason, type BlockSizeConstraints, type RequestHeader,
} from './nbd-protocol.js';

/**
 * What the server exports. Every range the server passes is non-empty and lies inside [0, sizeBytes).
 *
 * Buffers belong to the server, which reuses them for later requests; the rules below are what
 * make that safe. Options objects are shared and frozen: read them, never keep them.
 */
export interface NbdBackend {
  readonly sizeBytes: number;
  /**
   * `target` is the server's buffer of exactly `lengthBytes`, holding stale bytes: fill all of it
   * and resolve with it, or resolve with a buffer of your own of exactly `lengthBytes` (the server
   * sends it and never writes to it). Either way, never touch `target` once the returned promise
   * has settled, resolved or rejected: work still running on it then (a second extent, say) must
   * be waited for before settling.
   */
  read(offsetBytes: number, lengthBytes: number, target: Buffer): Promise<Buffer>;
  /**
   * `data` is lent, read-only: use it until the returned promise settles, never after (resolved
   * or rejected), as the server then fills it with another request's payload. A backend that
   * acknowledges before it has finished with `data` (ArrayBackend at toughness fast) resolves
   * with an NbdEarlyAcknowledgement: the server keeps the buffer out of use until its
   * `dataReleased` settles, and counts it against the connection's payload bound meanwhile, so
   * early acknowledgements cannot pile up past it.
   */
  write(offsetBytes: number, data: Buffer, options: NbdWriteOptions): Promise<void | NbdEarlyAcknowledgement>;
  /** Makes every completed write, from every connection, durable. */
  flush(): Promise<void>;
  trim(offsetBytes: number, lengthBytes: number): Promise<void>;
  writeZeroes(offsetBytes: number, lengthBytes: number, options: NbdWriteZeroesOptions): Promise<void>;
}

export interface NbdWriteOptions {
  readonly fua: boolean;
}

export interface NbdWriteZeroesOptions {
  readonly fua: boolean;
  readonly noHole: boolean;
}

/** What a write resolves with when it replies before it is done with the payload (see NbdBackend.write). */
export interface NbdEarlyAcknowledgement {
  /** Settles (either way) once the backend no longer reads the payload. */
  readonly dataReleased: Promise<unknown>;
}

export type NbdLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type NbdLogger = (level: NbdLogLevel, message: string) => void;

export type NbdAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface NbdLimits {
  /** Longest READ, WRITE or WRITE_ZEROES accepted; advertised as the maximum block size. */
  blockSizeMaxBytes: number;
  /** Requests one connection may have between header and flushed reply (its request slots). */
  inflightRequestsMax: number;
  /**
   * READ and WRITE payload buffer bytes one connection may hold at once: lent out (a request's,
   * or a payload the backend has not let go of yet) or idle for reuse. Buffers come in size
   * classes (powers of two from 4 KiB up to blockSizeMaxBytes), so a payload holds its class.
   */
  connectionPayloadBytesMax: number;
  /** The same, for all connections together. */
  serverPayloadBytesMax: number;
  /** Longest option data read into memory during the handshake; longer options are discarded and refused. */
  optionDataBytesMax: number;
  /** Options one client may send before it is judged to be wasting the server's time. */
  optionsPerConnectionMax: number;
  /** How long close() waits for in-flight requests before it destroys the connections. */
  shutdownGraceMs: number;
  /** Longest a client may take from connecting to the end of its handshake; then it is closed. */
  handshakeTimeoutMs: number;
  /**
   * Connections open at once. A newcomer past the cap closes the oldest connection still
   * negotiating (a client that finishes its handshake takes milliseconds); when every one is
   * serving, the newcomer is refused politely: an error reply to its first option, then close.
   */
  connectionsMax: number;
  /** After our last reply and FIN, how long we keep draining the peer's bytes so it reads our replies, not a reset. */
  closeLingerMs: number;
}

/**
 * The server's default payload budget (serverPayloadBytesMax). With the stripe buffers' pool
 * (STRIPE_BUFFER_POOL_BYTES, src/memory/arena.ts) and the member rings' data areas
 * (RING_DATA_BYTES) it bounds the data memory a daemon holds in flight: 32 + 16 MiB + 2 MiB a
 * member, which keeps a daemon under 1 MiB writes at QD128 on 4 connections within issue 11's
 * 256 MiB of resident memory (`npm run bench -- nbd`, daemon-peak-rss rows), the rings' threads
 * (about 9 MiB each) included.
 */
export const NBD_PAYLOAD_BYTES_MAX = 32 * MIB;

export const NBD_BLOCK_SIZE_MIN_BYTES = 1;
export const NBD_BLOCK_SIZE_PREFERRED_BYTES = 4 * KIB;

export const NBD_LIMITS_DEFAULT: Readonly<NbdLimits> = Object.freeze({
  blockSizeMaxBytes: 32 * MIB,
  inflightRequestsMax: 64,
  connectionPayloadBytesMax: 32 * MIB,
  serverPayloadBytesMax: NBD_PAYLOAD_BYTES_MAX,
  optionDataBytesMax: 8 * KIB,
  optionsPerConnectionMax: 256,
  shutdownGraceMs: 10_000,
  closeLingerMs: 2_000,
  handshakeTimeoutMs: 10_000,
  connectionsMax: 256,
});

/** The relations that keep every bound reachable: one request of the maximum size always fits an idle connection, and one connection always fits the server. */
function assertLimits(limits: NbdLimits): void {
  const problem = blockSizeConstraintsProblem(blockSizes(limits));
  assert(problem === undefined, `NBD block sizes: ${problem}`);
  assert(Number.isSafeInteger(limits.inflightRequestsMax) && limits.inflightRequestsMax >= 1, 'inflightRequestsMax >= 1');
  assert(limits.connectionPayloadBytesMax >= limits.blockSizeMaxBytes, 'connectionPayloadBytesMax >= blockSizeMaxBytes');
  assert(limits.serverPayloadBytesMax >= limits.connectionPayloadBytesMax, 'serverPayloadBytesMax >= connectionPayloadBytesMax');
  // The longest legal GO: name length, a 4096-byte name, a count and the four defined information types.
  assert(limits.optionDataBytesMax >= 4 + NBD_STRING_BYTES_MAX + 2 + 2 * 4, 'optionDataBytesMax holds the longest legal NBD_OPT_GO');
  assert(limits.optionsPerConnectionMax >= 1, 'optionsPerConnectionMax >= 1');
  assert(limits.shutdownGraceMs >= 0 && limits.closeLingerMs >= 0, 'timeouts are non-negative');
  assert(Number.isSafeInteger(limits.handshakeTimeoutMs) && limits.handshakeTimeoutMs >= 1, 'handshakeTimeoutMs >= 1');
  assert(Number.isSafeInteger(limits.connectionsMax) && limits.connectionsMax >= 1, 'connectionsMax >= 1');
}

function blockSizes(limits: NbdLimits): BlockSizeConstraints {
  return { minimumBytes: NBD_BLOCK_SIZE_MIN_BYTES, preferredBytes: NBD_BLOCK_SIZE_PREFERRED_BYTES, maximumBytes: limits.blockSizeMaxBytes };
}

export interface NbdServerOptions {
  backend: NbdBackend;
  /** When set, only this name (or "", the default export) is served; otherwise any name is. */
  exportName?: string;
  /** Sent as NBD_INFO_DESCRIPTION and beside the name in NBD_OPT_LIST. */
  description?: string;
  /** Advertise NBD_FLAG_CAN_MULTI_CONN: true when the backend's flush covers writes from every connection. */
  multiConn?: boolean;
  logger?: NbdLogger;
  limits?: Partial<NbdLimits>;
}

// --- Backend failures -> NBD errors -------------------------------------------------------

/** Failures a backend may report in the normal course of things, and the NBD error each becomes. */
const EXPECTED_FAILURE_CODES: ReadonlyMap<string, number> = new Map([
  ['EIO', NBD_EIO],
  ['ENOSPC', NBD_ENOSPC],
  ['EDQUOT', NBD_ENOSPC], // the spec asks for EDQUOT and EFBIG to be reported as ENOSPC
  ['EFBIG', NBD_ENOSPC],
  ['EROFS', NBD_EPERM],
]);

/** Maps what a backend threw to the error sent to the client; `expected: false` failures deserve a log line at error level. */
export function nbdErrorForFailure(failure: unknown): { error: number; expected: boolean } {
  if (typeof failure === 'object' && failure !== null) {
    const { nbdError, code } = failure as { nbdError?: unknown; code?: unknown };
    if (typeof nbdError === 'number' && NBD_ERRORS.has(nbdError)) return { error: nbdError, expected: true };
    if (typeof code === 'string') {
      const error = EXPECTED_FAILURE_CODES.get(code);
      if (error !== undefined) return { error, expected: true };
    }
  }
  return { error: NBD_EIO, expected: false };
}

// --- Input bytes --------------------------------------------------------------------------

/**
 * Bytes received and not yet consumed, as the chunks the socket delivered; bounded because the
 * socket is paused whenever the parser stops consuming. Consuming moves an offset into the first
 * chunk rather than slicing it, so parsing many requests from one read makes no new views.
 */
class ByteQueue {
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private headOffsetBytes = 0;
  lengthBytes = 0;
  /** Where, in the buffer locate() returned, the located bytes start. */
  locatedAtBytes = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.lengthBytes += chunk.length;
  }

  /** Exactly `count` bytes, consumed, in a buffer of their own (the handshake's use; it allocates). */
  take(count: number): Buffer {
    const out = Buffer.allocUnsafe(count);
    const copied = this.copyInto(out, 0, count);
    assert(copied === count, `take ${count} of ${copied + this.lengthBytes} queued bytes`);
    return out;
  }

  /**
   * The next `count` bytes without consuming them: in place in the first chunk when they lie
   * there (at locatedAtBytes), otherwise copied into `scratch` (at 0).
   */
  locate(count: number, scratch: Buffer): Buffer {
    if (!(count <= this.lengthBytes && count <= scratch.length)) assert(false, `locate ${count} of ${this.lengthBytes} queued bytes`);
    const first = this.chunks[0]!;
    if (first.length - this.headOffsetBytes >= count) {
      this.locatedAtBytes = this.headOffsetBytes;
      return first;
    }
    let chunkIndex = 0;
    let at = this.headOffsetBytes;
    for (let index = 0; index < count; index++) {
      while (at === this.chunks[chunkIndex]!.length) {
        chunkIndex++;
        at = 0;
      }
      scratch[index] = this.chunks[chunkIndex]![at++]!;
    }
    this.locatedAtBytes = 0;
    return scratch;
  }

  /** Consumes exactly `count` bytes. */
  skip(count: number): void {
    if (!(count <= this.lengthBytes)) assert(false, `skip ${count} of ${this.lengthBytes} queued bytes`);
    let left = count;
    while (left > 0) left -= this.skipUpTo(left);
  }

  /** Consumes between 1 and `count` bytes from the front (those of the first chunk); returns how many. */
  skipUpTo(count: number): number {
    const first = this.chunks[0];
    if (!(first !== undefined && count > 0)) assert(false, 'skipUpTo from a non-empty queue');
    const taken = Math.min(count, first.length - this.headOffsetBytes);
    this.consume(taken);
    return taken;
  }

  /** Moves up to `count` bytes from the front into `target` at `targetOffsetBytes`; returns how many. */
  copyInto(target: Buffer, targetOffsetBytes: number, count: number): number {
    let copied = 0;
    while (copied < count && this.lengthBytes > 0) {
      const first = this.chunks[0]!;
      const piece = Math.min(count - copied, first.length - this.headOffsetBytes);
      first.copy(target, targetOffsetBytes + copied, this.headOffsetBytes, this.headOffsetBytes + piece);
      this.consume(piece);
      copied += piece;
    }
    return copied;
  }

  clear(): void {
    this.chunks.length = 0;
    this.headOffsetBytes = 0;
    this.lengthBytes = 0;
  }

  private consume(count: number): void {
    this.headOffsetBytes += count;
    this.lengthBytes -= count;
    if (this.headOffsetBytes === this.chunks[0]!.length) {
      this.chunks.shift();
      this.headOffsetBytes = 0;
    }
  }
}

// --- The server ---------------------------------------------------------------------------

export class NbdServer {
  readonly backend: NbdBackend;
  readonly limits: Readonly<NbdLimits>;
  readonly exportName: string | undefined;
  readonly description: string | undefined;
  readonly transmissionFlags: number;
  readonly log: NbdLogger;
  /** Payload bytes all connections' pools draw from (serverPayloadBytesMax). */
  readonly budget: PayloadBudget;
  private readonly listeners: { netServer: net.Server; address: NbdAddress }[] = [];
  private readonly connections = new Set<NbdConnection>();
  private nextConnectionId = 1;
  private closing: Promise<void> | undefined;
  private closedConnectionHeldBytesMax = 0;

  constructor(options: NbdServerOptions) {
    this.backend = options.backend;
    assert(Number.isSafeInteger(this.backend.sizeBytes) && this.backend.sizeBytes >= 0, 'backend size is a safe non-negative integer');
    this.limits = Object.freeze({ ...NBD_LIMITS_DEFAULT, ...options.limits });
    assertLimits(this.limits);
    this.exportName = options.exportName;
    this.description = options.description;
    for (const text of [options.exportName, options.description]) {
      if (text !== undefined) assert(Buffer.byteLength(text) <= NBD_STRING_BYTES_MAX && !text.includes('\0'), 'export name and description are NBD strings');
    }
    this.transmissionFlags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES
      | ((options.multiConn ?? true) ? NBD_FLAG_CAN_MULTI_CONN : 0);
    this.log = options.logger ?? (() => {});
    this.budget = new PayloadBudget(this.limits.serverPayloadBytesMax);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Payload memory: bytes held by every connection's pool now and at most, the most one
   * connection ever held, and how many buffers were ever allocated (flat in a steady state).
   */
  get payloadStats(): { heldBytes: number; heldBytesMax: number; connectionHeldBytesMax: number; buffersAllocated: number } {
    let connectionHeldBytesMax = this.closedConnectionHeldBytesMax;
    for (const connection of this.connections) connectionHeldBytesMax = Math.max(connectionHeldBytesMax, connection.payloadHeldBytesMax);
    return { heldBytes: this.budget.heldBytes, heldBytesMax: this.budget.heldBytesMax, connectionHeldBytesMax, buffersAllocated: this.budget.buffersAllocated };
  }

  /** Connections not already on their way out (an evicted one stays in the set until it closes). */
  private openConnectionCount(): number {
    let count = 0;
    for (const connection of this.connections) if (!connection.closing) count++;
    return count;
  }

  /** Addresses being listened on, with TCP ports resolved (port 0 asks for an ephemeral one). */
  get addresses(): NbdAddress[] {
    return this.listeners.map((listener) => listener.address);
  }

  /** The name a client should use, and what NBD_OPT_LIST reports. */
  get canonicalName(): string {
    return this.exportName ?? '';
  }

  acceptsName(name: Buffer): boolean {
    return this.exportName === undefined || name.length === 0 || name.equals(Buffer.from(this.exportName, 'utf8'));
  }

  async listen(address: NbdAddress): Promise<NbdAddress> {
    assert(this.closing === undefined, 'listen() before close()');
    const netServer = net.createServer({ allowHalfOpen: true }, (socket) => {
      if (address.kind === 'tcp') socket.setNoDelay(true);
      void this.serve(socket);
    });
    await new Promise<void>((resolve, reject) => {
      netServer.once('error', (error: NodeJS.ErrnoException) => reject(new JraidError('E_DAEMON', `cannot listen for NBD on ${describeAddress(address)}: ${error.code ?? error.message}`, {
        path: address.kind === 'unix' ? address.path : undefined,
        hint: error.code === 'EADDRINUSE' ? 'another process is serving there; stop it or choose another address' : undefined,
      })));
      if (address.kind === 'unix') netServer.listen({ path: address.path }, resolve);
      else netServer.listen({ host: address.host, port: address.port }, resolve);
    });
    netServer.on('error', (error) => this.log('error', `nbd listener on ${describeAddress(address)}: ${error.message}`));
    let bound: NbdAddress = address;
    const info = netServer.address();
    if (address.kind === 'tcp' && info !== null && typeof info === 'object') bound = { kind: 'tcp', host: info.address, port: info.port };
    this.listeners.push({ netServer, address: bound });
    this.log('info', `nbd: serving ${this.backend.sizeBytes} bytes on ${describeAddress(bound)}`);
    return bound;
  }

  /** Serves one client over any duplex byte stream (a socket from listen(), or a test's stream); resolves when it closes. */
  serve(stream: Duplex): Promise<void> {
    let refusal: string | undefined;
    if (this.closing === undefined && this.openConnectionCount() >= this.limits.connectionsMax) {
      // The oldest still negotiating has had the longest to finish: it makes room.
      const oldest = [...this.connections].find((candidate) => candidate.negotiating);
      if (oldest) {
        oldest.destroy(`evicted: ${this.limits.connectionsMax} connections are open and it had not finished its handshake`);
      } else {
        refusal = `too many connections: this server serves at most ${this.limits.connectionsMax} at once; try again later`;
        this.log('warn', `refusing a connection: ${refusal}`);
      }
    }
    const connection = new NbdConnection(this, stream, this.nextConnectionId++, refusal);
    this.connections.add(connection);
    void connection.closed.then(() => {
      this.closedConnectionHeldBytesMax = Math.max(this.closedConnectionHeldBytesMax, connection.payloadHeldBytesMax);
      this.connections.delete(connection);
    });
    if (this.closing !== undefined) connection.shutdown();
    else connection.start();
    return connection.closed;
  }

  /** Stops accepting, lets in-flight requests finish and their replies go out, then closes every connection. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    const listenersClosed = this.listeners.map(({ netServer }) => new Promise<void>((resolve) => netServer.close(() => resolve())));
    const connections = [...this.connections];
    for (const connection of connections) connection.shutdown();
    const force = setTimeout(() => {
      for (const connection of connections) connection.destroy('in-flight requests outlived the shutdown grace period');
    }, this.limits.shutdownGraceMs);
    await Promise.all(connections.map((connection) => connection.closed));
    clearTimeout(force);
    await Promise.all(listenersClosed);
  }
}

function describeAddress(address: NbdAddress): string {
  return address.kind === 'unix' ? `unix:${address.path}` : `${address.host}:${address.port}`;
}

// --- One connection -----------------------------------------------------------------------

/** What the parser waits for next. Each state names the bytes it needs. */
type ReadState =
  | { readonly kind: 'client-flags' }
  | { readonly kind: 'option-header' }
  | { readonly kind: 'option-data'; readonly option: number; readonly lengthBytes: number }
  | { readonly kind: 'option-discard'; readonly option: number; remainingBytes: number }
  | { readonly kind: 'request-header' }
  /** `parsing` waits for a slot or payload room. */
  | { readonly kind: 'admission' }
  /** `parsing`'s write payload is arriving. */
  | { readonly kind: 'write-payload' }
  /** `parsing` was refused and its write payload is skipped. */
  | { readonly kind: 'payload-discard' }
  | { readonly kind: 'stopped' };

// The transmission states carry nothing (the request is the connection's `parsing` slot), so
// moving between them allocates nothing.
const CLIENT_FLAGS: ReadState = Object.freeze({ kind: 'client-flags' });
const OPTION_HEADER: ReadState = Object.freeze({ kind: 'option-header' });
const REQUEST_HEADER: ReadState = Object.freeze({ kind: 'request-header' });
const ADMISSION: ReadState = Object.freeze({ kind: 'admission' });
const WRITE_PAYLOAD: ReadState = Object.freeze({ kind: 'write-payload' });
const PAYLOAD_DISCARD: ReadState = Object.freeze({ kind: 'payload-discard' });
const STOPPED: ReadState = Object.freeze({ kind: 'stopped' });

/** Options handed to the backend: made once, shared, frozen. Indexed by FUA (and NO_HOLE << 1). */
const WRITE_OPTIONS: readonly NbdWriteOptions[] = [Object.freeze({ fua: false }), Object.freeze({ fua: true })];
const WRITE_ZEROES_OPTIONS: readonly NbdWriteZeroesOptions[] = [
  Object.freeze({ fua: false, noHole: false }), Object.freeze({ fua: true, noHole: false }),
  Object.freeze({ fua: false, noHole: true }), Object.freeze({ fua: true, noHole: true }),
];

/** Batches of replies being written at once; a third batch waits until one of these has been written. */
const REPLY_BATCHES_MAX = 2;

/**
 * free: on the connection's free list. parsed: header read, waiting for admission (not in
 * flight). running: admitted: receiving its payload, in the backend, or (refused) skipping its
 * payload. ready: reply queued for the next batch. replying: handed to the stream.
 */
type SlotState = 'free' | 'parsed' | 'running' | 'ready' | 'replying';

/** One request from its header to its written reply. A connection makes inflightRequestsMax + 1 of them once, and reuses them. */
class RequestSlot {
  state: SlotState = 'free';
  type = 0;
  flags = 0;
  /** The 64-bit offset as two halves (for messages) and as a number (exact below 2^53, which is all the checkpoint lets through). */
  offsetHigh = 0;
  offsetLow = 0;
  offsetBytes = 0;
  lengthBytes = 0;
  /** The checkpoint's verdict (nbd-protocol.ts requestRule) and the error the reply carries. */
  rule = REQUEST_OK;
  error = 0;
  /** The pool buffer this request holds (a WRITE's payload or a READ's target) and its exact-length view given to the backend. */
  buffer: Buffer | undefined;
  view: Buffer | undefined;
  /** What a successful READ sends: `view`, or a buffer the backend handed back. */
  data: Buffer | undefined;
  /** Payload bytes received so far (write-payload), or still to skip (payload-discard). */
  progressBytes = 0;
  /** A TRIM with FUA whose flush is still to run. */
  flushAfterTrim = false;
  readonly onResolved: (value: unknown) => void;
  readonly onRejected: (failure: unknown) => void;

  /** `replyHeader`: this slot's own 16 bytes, magic set once; the handle is copied in when a header is parsed. */
  constructor(readonly replyHeader: Buffer, connection: NbdConnection) {
    replyHeader.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
    this.onResolved = (value) => connection.onBackendResolved(this, value);
    this.onRejected = (failure) => connection.onBackendRejected(this, failure);
  }

  /** The header as the checkpoint's text functions take it (messages only: it allocates). */
  describeHeader(): RequestHeader {
    return { type: this.type, flags: this.flags, handle: this.replyHeader.readBigUInt64BE(8), offset: (BigInt(this.offsetHigh) << 32n) | BigInt(this.offsetLow), lengthBytes: this.lengthBytes };
  }
}

/** Replies written together: headers of replies without data copied into `headers`, each READ as its slot's header and its data. */
class ReplyBatch {
  busy = false;
  slots: RequestSlot[] = [];
  private readonly headers: Buffer;
  /** headers.subarray(0, n * 16), made the first time n replies share a batch. */
  private readonly headerViews: (Buffer | undefined)[] = [];
  readonly onWritten: () => void;

  constructor(repliesMax: number, onWritten: (batch: ReplyBatch) => void) {
    this.headers = Buffer.alloc(repliesMax * SIMPLE_REPLY_HEADER_SIZE_BYTES);
    this.onWritten = () => onWritten(this);
  }

  /** Copies the headers of the batch's replies without data together; returns them as one buffer, or undefined when there are none. */
  gatherHeaders(): Buffer | undefined {
    let count = 0;
    for (let index = 0; index < this.slots.length; index++) {
      const slot = this.slots[index]!;
      if (slot.data === undefined) this.headers.set(slot.replyHeader, SIMPLE_REPLY_HEADER_SIZE_BYTES * count++);
    }
    if (count === 0) return undefined;
    return (this.headerViews[count] ??= this.headers.subarray(0, SIMPLE_REPLY_HEADER_SIZE_BYTES * count));
  }
}

type Phase = 'handshake' | 'transmission' | 'draining' | 'lingering' | 'closed';

const COMMAND_NAMES: ReadonlyMap<number, string> = new Map([
  [NBD_CMD_READ, 'read'], [NBD_CMD_WRITE, 'write'], [NBD_CMD_DISC, 'disc'], [NBD_CMD_FLUSH, 'flush'],
  [NBD_CMD_TRIM, 'trim'], [NBD_CMD_WRITE_ZEROES, 'write-zeroes'],
]);

const TWO_TO_THE_32 = 2 ** 32;

class NbdConnection {
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private phase: Phase = 'handshake';
  private state: ReadState = CLIENT_FLAGS;
  private readonly input = new ByteQueue();
  private optionsReceived = 0;
  private noZeroes = false;
  private exportSizeBytes = 0;
  private pumping = false;
  /** The peer has sent its last byte: what is queued is still parsed and answered. */
  private inputEnded = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;

  // Transmission only: made by enterTransmission, so a connection still negotiating costs little.
  private readonly freeSlots: RequestSlot[] = [];
  /** Admitted requests: from admission until their reply has left (or can never leave). */
  private inflightCount = 0;
  /** The request the parser is on: waiting for admission, receiving its payload, or skipping it. */
  private parsing: RequestSlot | undefined;
  /** Replies completed and not yet in a batch. */
  private ready: RequestSlot[] = [];
  private readonly batches: ReplyBatch[] = [];
  private flushScheduled = false;
  private pool: PayloadPool | undefined;
  private readonly headerScratch = Buffer.alloc(REQUEST_HEADER_SIZE_BYTES);
  private readonly flushReplies = (): void => this.writeReadyReplies();

  /** `refusal`: the server is full; the client is told so at its first option, then closed. */
  constructor(private readonly server: NbdServer, private readonly stream: Duplex, private readonly id: number, private readonly refusal?: string) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd());
    stream.on('error', (error: NodeJS.ErrnoException) => {
      this.log('debug', `stream error: ${error.code ?? error.message}`);
      stream.destroy();
    });
    stream.on('close', () => this.onClose());
  }

  start(): void {
    this.log('debug', 'connected');
    this.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
    this.handshakeTimer = setTimeout(() => {
      if (this.phase !== 'handshake') return;
      this.stopReading();
      this.destroy(`no handshake within ${this.server.limits.handshakeTimeoutMs} ms`);
    }, this.server.limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  /** Still negotiating, and not already being closed: the connection the cap may evict. */
  get negotiating(): boolean {
    return this.phase === 'handshake' && !this.closing;
  }

  /** Destroyed or ending: it no longer counts against the cap. */
  get closing(): boolean {
    return this.stream.destroyed || this.phase === 'draining' || this.phase === 'lingering' || this.phase === 'closed';
  }

  /** The most payload memory this connection's pool ever held. */
  get payloadHeldBytesMax(): number {
    return this.pool?.stats.heldBytesMax ?? 0;
  }

  /** Server shutdown: a client still negotiating has nothing to lose and is dropped; one in transmission gets its replies first. */
  shutdown(): void {
    if (this.phase === 'handshake') this.destroy('server shutting down during the handshake');
    else this.drainAndClose('server shutting down');
  }

  destroy(reason: string): void {
    if (this.phase === 'closed') return;
    this.log('debug', `closing: ${reason}`);
    this.stream.destroy();
  }

  private log(level: Parameters<NbdLogger>[0], message: string): void {
    this.server.log(level, `nbd[${this.id}]: ${message}`);
  }

  // --- Input --------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.phase === 'lingering' || this.phase === 'closed' || this.state.kind === 'stopped') return;
    this.input.push(chunk);
    this.pump();
  }

  private onEnd(): void {
    if (this.phase === 'lingering') {
      if (this.stream.writableFinished) this.stream.destroy();
    } else if (this.phase === 'handshake' || this.phase === 'transmission') {
      // A client may half-close after its last request: everything it sent is still answered.
      this.inputEnded = true;
      this.pump();
    }
  }

  /** Consumes queued input until it runs out or a request must wait for room; pauses the stream while waiting. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.step()) { /* each step consumes input or changes state */ }
    } finally {
      this.pumping = false;
    }
    if (this.phase !== 'handshake' && this.phase !== 'transmission') return;
    if (this.state.kind === 'admission') {
      this.stream.pause();
    } else if (this.inputEnded) {
      // The parser wants bytes that will never come; a partial write payload is dropped unwritten.
      this.drainAndClose('client closed its side');
    } else {
      this.stream.resume();
    }
  }

  /** One parser step; false when it needs more input or must wait. */
  private step(): boolean {
    const state = this.state;
    switch (state.kind) {
      case 'client-flags':
        if (this.input.lengthBytes < CLIENT_FLAGS_SIZE_BYTES) return false;
        this.onClientFlags(this.input.take(CLIENT_FLAGS_SIZE_BYTES).readUInt32BE(0));
        return true;
      case 'option-header':
        if (this.input.lengthBytes < OPTION_HEADER_SIZE_BYTES) return false;
        this.onOptionHeader(this.input.take(OPTION_HEADER_SIZE_BYTES));
        return true;
      case 'option-data':
        if (this.input.lengthBytes < state.lengthBytes) return false;
        this.state = OPTION_HEADER;
        this.onOption(state.option, state.lengthBytes === 0 ? Buffer.alloc(0) : this.input.take(state.lengthBytes));
        return true;
      case 'option-discard':
        if (state.remainingBytes > 0) {
          if (this.input.lengthBytes === 0) return false;
          state.remainingBytes -= this.input.skipUpTo(state.remainingBytes);
          return true;
        }
        this.state = OPTION_HEADER;
        this.replyOption(state.option, NBD_REP_ERR_TOO_BIG, `option data longer than ${this.server.limits.optionDataBytesMax} bytes`);
        return true;
      case 'request-header':
        if (this.input.lengthBytes < REQUEST_HEADER_SIZE_BYTES) return false;
        this.onRequestHeader();
        return true;
      case 'admission':
        return this.admit(this.parsing!);
      case 'write-payload':
        if (this.input.lengthBytes === 0) return false;
        this.receivePayload(this.parsing!);
        return true;
      case 'payload-discard':
        return this.discardPayload(this.parsing!);
      case 'stopped':
        return false;
    }
  }

  private stopReading(): void {
    const slot = this.parsing;
    this.parsing = undefined;
    if (this.state.kind === 'admission') {
      // Not admitted: it holds nothing but a possible wait for the budget.
      this.pool?.cancelWait();
      this.freeSlot(slot!);
    } else if (this.state.kind === 'write-payload' || this.state.kind === 'payload-discard') {
      // A write whose payload never fully arrived never reaches the backend.
      this.finish(slot!);
    }
    this.state = STOPPED;
    this.input.clear();
    this.stream.pause();
  }

  // --- Handshake ----------------------------------------------------------------------------

  private onClientFlags(flags: number): void {
    const known = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;
    if ((flags & ~known) !== 0) {
      // The spec: the server MUST drop the connection on client flags it does not know.
      this.stopReading();
      this.destroy(`unknown client flags 0x${flags.toString(16)}`);
      return;
    }
    this.noZeroes = (flags & NBD_FLAG_C_NO_ZEROES) !== 0;
    this.state = OPTION_HEADER;
  }

  private onOptionHeader(bytes: Buffer): void {
    const decoded = decodeOptionHeader(bytes);
    if (!decoded.ok) {
      this.stopReading();
      this.destroy(decoded.reason);
      return;
    }
    this.optionsReceived++;
    if (this.optionsReceived > this.server.limits.optionsPerConnectionMax) {
      this.stopReading();
      this.destroy(`more than ${this.server.limits.optionsPerConnectionMax} options`);
      return;
    }
    const { option, dataLengthBytes } = decoded.header;
    if (dataLengthBytes > this.server.limits.optionDataBytesMax) {
      if (option === NBD_OPT_EXPORT_NAME) {
        // NBD_OPT_EXPORT_NAME has no error reply: an export name this long can only end the session.
        this.stopReading();
        this.destroy(`NBD_OPT_EXPORT_NAME of ${dataLengthBytes} bytes`);
        return;
      }
      this.state = { kind: 'option-discard', option, remainingBytes: dataLengthBytes };
      return;
    }
    this.state = { kind: 'option-data', option, lengthBytes: dataLengthBytes };
  }

  private onOption(option: number, data: Buffer): void {
    if (this.refusal !== undefined && option !== NBD_OPT_ABORT) {
      // Every option gets the reason (a client may try several before it asks for the export);
      // asking for the export ends it. NBD_OPT_EXPORT_NAME has no error reply: only the close.
      if (option !== NBD_OPT_EXPORT_NAME) this.replyOption(option, NBD_REP_ERR_POLICY, this.refusal);
      if (option === NBD_OPT_GO || option === NBD_OPT_EXPORT_NAME) this.drainAndClose(this.refusal);
      return;
    }
    switch (option) {
      case NBD_OPT_EXPORT_NAME:
        return this.onExportName(data);
      case NBD_OPT_ABORT:
        // Any data is ignored, as the spec asks. The client drops the connection after our ACK.
        this.replyOption(option, NBD_REP_ACK);
        this.stopReading();
        this.endAndLinger();
        return;
      case NBD_OPT_LIST:
        if (data.length !== 0) return this.replyOption(option, NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
        this.write(encodeOptionReply(option, NBD_REP_SERVER, encodeServerReplyData(this.server.canonicalName, this.server.description)));
        return this.replyOption(option, NBD_REP_ACK);
      case NBD_OPT_INFO:
      case NBD_OPT_GO:
        return this.onInfoOrGo(option, data);
      case NBD_OPT_STRUCTURED_REPLY:
        return this.replyOption(option, NBD_REP_ERR_UNSUP, 'this server sends simple replies only');
      case NBD_OPT_STARTTLS:
        return this.replyOption(option, NBD_REP_ERR_UNSUP, 'TLS is not supported');
      default:
        return this.replyOption(option, NBD_REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }

  private onExportName(name: Buffer): void {
    if (!this.server.acceptsName(name)) {
      // No error reply exists for NBD_OPT_EXPORT_NAME: the spec says terminate the session.
      this.stopReading();
      this.destroy(`unknown export "${name.toString('utf8')}" requested with NBD_OPT_EXPORT_NAME`);
      return;
    }
    this.exportSizeBytes = this.server.backend.sizeBytes;
    this.write(encodeExportNameReply(this.exportSizeBytes, this.server.transmissionFlags, this.noZeroes));
    this.enterTransmission();
  }

  private onInfoOrGo(option: number, data: Buffer): void {
    const decoded = decodeInfoRequest(data);
    if (!decoded.ok) return this.replyOption(option, NBD_REP_ERR_INVALID, decoded.reason);
    const { name, infoTypes } = decoded.request;
    if (!this.server.acceptsName(name)) {
      return this.replyOption(option, NBD_REP_ERR_UNKNOWN, `no export named "${name.toString('utf8')}"`);
    }
    const sizeBytes = this.server.backend.sizeBytes;
    // NBD_INFO_EXPORT always; NBD_INFO_BLOCK_SIZE always too, as our maximum is not the default and clients may ignore it.
    this.write(encodeOptionReply(option, NBD_REP_INFO, encodeInfoExport(sizeBytes, this.server.transmissionFlags)));
    this.write(encodeOptionReply(option, NBD_REP_INFO, encodeInfoBlockSize(blockSizes(this.server.limits))));
    if (infoTypes.includes(NBD_INFO_NAME)) this.write(encodeOptionReply(option, NBD_REP_INFO, encodeInfoName(this.server.canonicalName)));
    if (infoTypes.includes(NBD_INFO_DESCRIPTION) && this.server.description !== undefined) {
      this.write(encodeOptionReply(option, NBD_REP_INFO, encodeInfoDescription(this.server.description)));
    }
    this.replyOption(option, NBD_REP_ACK);
    if (option === NBD_OPT_GO) {
      this.exportSizeBytes = sizeBytes;
      this.enterTransmission();
    }
  }

  private replyOption(option: number, replyType: number, message?: string): void {
    this.write(encodeOptionReply(option, replyType, message === undefined ? undefined : Buffer.from(message, 'utf8')));
  }

  private enterTransmission(): void {
    clearTimeout(this.handshakeTimer);
    this.phase = 'transmission';
    this.state = REQUEST_HEADER;
    this.prepareTransmission();
    this.log('debug', `transmission: ${this.exportSizeBytes} bytes`);
  }

  // --- Transmission: parsing and admission --------------------------------------------------

  /** The slots, the payload pool and the reply batches: made once, when transmission starts. */
  private prepareTransmission(): void {
    const limits = this.server.limits;
    const slotCount = limits.inflightRequestsMax + 1; // every admitted request, and the one being parsed
    const headers = Buffer.alloc(slotCount * SIMPLE_REPLY_HEADER_SIZE_BYTES);
    for (let index = slotCount - 1; index >= 0; index--) {
      this.freeSlots.push(new RequestSlot(headers.subarray(index * SIMPLE_REPLY_HEADER_SIZE_BYTES, (index + 1) * SIMPLE_REPLY_HEADER_SIZE_BYTES), this));
    }
    for (let index = 0; index < REPLY_BATCHES_MAX; index++) {
      this.batches.push(new ReplyBatch(limits.inflightRequestsMax, (batch) => this.onBatchWritten(batch)));
    }
    this.pool = new PayloadPool(this.server.budget, limits.connectionPayloadBytesMax, limits.blockSizeMaxBytes, () => this.onPayloadReturned());
  }

  /** Reads the header at the front of the input into a free slot and judges it. */
  private onRequestHeader(): void {
    const bytes = this.input.locate(REQUEST_HEADER_SIZE_BYTES, this.headerScratch);
    const at = this.input.locatedAtBytes;
    const magic = bytes.readUInt32BE(at);
    if (magic !== NBD_REQUEST_MAGIC) {
      // Without the magic we cannot know where anything starts: finish what is in flight and close.
      this.drainAndClose(`bad request magic 0x${magic.toString(16)}`);
      return;
    }
    const slot = this.freeSlots.pop();
    // Slots are one more than the in-flight bound, and the previous request was admitted before this header was read.
    if (slot === undefined) assert(false, `a free request slot (${this.inflightCount} in flight)`);
    slot.flags = bytes.readUInt16BE(at + 4);
    slot.type = bytes.readUInt16BE(at + 6);
    slot.replyHeader.writeUInt32BE(bytes.readUInt32BE(at + 8), 8); // the handle, echoed as it came
    slot.replyHeader.writeUInt32BE(bytes.readUInt32BE(at + 12), 12);
    slot.offsetHigh = bytes.readUInt32BE(at + 16);
    slot.offsetLow = bytes.readUInt32BE(at + 20);
    slot.offsetBytes = slot.offsetHigh * TWO_TO_THE_32 + slot.offsetLow;
    slot.lengthBytes = bytes.readUInt32BE(at + 24);
    this.input.skip(REQUEST_HEADER_SIZE_BYTES);
    if (slot.type === NBD_CMD_DISC) {
      this.freeSlot(slot);
      this.drainAndClose('client sent NBD_CMD_DISC');
      return;
    }
    const limits = { exportSizeBytes: this.exportSizeBytes, blockSizeMaxBytes: this.server.limits.blockSizeMaxBytes };
    slot.rule = requestRule(slot.type, slot.flags, slot.offsetBytes, slot.lengthBytes, limits);
    slot.error = requestRuleError(slot.rule, slot.type);
    if (slot.rule !== REQUEST_OK) this.log('debug', `refusing ${describeSlot(slot)}: ${requestRuleReason(slot.rule, slot.describeHeader(), limits)}`);
    slot.state = 'parsed';
    this.parsing = slot;
    this.state = ADMISSION;
  }

  /** Admits the request if the bounds allow; otherwise leaves it waiting (the stream is paused) and returns false. */
  private admit(slot: RequestSlot): boolean {
    if (this.inflightCount >= this.server.limits.inflightRequestsMax) return false;
    if (slot.error === 0 && (slot.type === NBD_CMD_READ || slot.type === NBD_CMD_WRITE)) {
      const buffer = this.pool!.acquire(slot.lengthBytes);
      if (buffer === undefined) return false; // onPayloadReturned pumps again when there may be room
      slot.buffer = buffer;
      slot.view = buffer.length === slot.lengthBytes ? buffer : buffer.subarray(0, slot.lengthBytes);
    }
    this.inflightCount++;
    slot.state = 'running';
    this.parsing = undefined;
    this.state = REQUEST_HEADER;
    if (slot.rule === REQUEST_WRITE_TOO_LONG) {
      this.queueReply(slot);
      this.drainAndClose(requestRuleReason(slot.rule, slot.describeHeader(), { exportSizeBytes: this.exportSizeBytes, blockSizeMaxBytes: this.server.limits.blockSizeMaxBytes }));
    } else if (slot.error !== 0 && slot.type === NBD_CMD_WRITE) {
      slot.progressBytes = slot.lengthBytes;
      this.parsing = slot;
      this.state = PAYLOAD_DISCARD;
    } else if (slot.error !== 0) {
      this.queueReply(slot);
    } else if (slot.type === NBD_CMD_WRITE) {
      slot.progressBytes = 0;
      this.parsing = slot;
      this.state = WRITE_PAYLOAD;
    } else {
      this.startBackend(slot);
    }
    return true;
  }

  private receivePayload(slot: RequestSlot): void {
    slot.progressBytes += this.input.copyInto(slot.view!, slot.progressBytes, slot.lengthBytes - slot.progressBytes);
    if (slot.progressBytes === slot.lengthBytes) {
      this.parsing = undefined;
      this.state = REQUEST_HEADER;
      this.startBackend(slot);
    }
  }

  private discardPayload(slot: RequestSlot): boolean {
    if (slot.progressBytes > 0) {
      if (this.input.lengthBytes === 0) return false;
      slot.progressBytes -= this.input.skipUpTo(slot.progressBytes);
      return true;
    }
    this.parsing = undefined;
    this.state = REQUEST_HEADER;
    this.queueReply(slot);
    return true;
  }

  /** A released payload buffer (or a budget grant) may be the room a waiting request needs. */
  private onPayloadReturned(): void {
    if (this.state.kind === 'admission' && !this.pumping) this.pump();
  }

  // --- Transmission: running requests -------------------------------------------------------

  /** Hands an admitted request to the backend; the slot's callbacks take it from there. */
  private startBackend(slot: RequestSlot): void {
    // The checkpoint (requestRule) let nothing else through; a request outside the export here is our bug.
    if (!(slot.offsetBytes + slot.lengthBytes <= this.exportSizeBytes)) assert(false, `${describeSlot(slot)} inside the export`);
    const backend = this.server.backend;
    const fua = (slot.flags & NBD_CMD_FLAG_FUA) !== 0 ? 1 : 0;
    try {
      let work: Promise<unknown>;
      switch (slot.type) {
        case NBD_CMD_READ:
          work = backend.read(slot.offsetBytes, slot.lengthBytes, slot.view!);
          break;
        case NBD_CMD_WRITE:
          work = backend.write(slot.offsetBytes, slot.view!, WRITE_OPTIONS[fua]!);
          break;
        case NBD_CMD_FLUSH:
          work = backend.flush();
          break;
        case NBD_CMD_TRIM:
          slot.flushAfterTrim = fua === 1; // the backend's trim has no FUA of its own
          work = backend.trim(slot.offsetBytes, slot.lengthBytes);
          break;
        case NBD_CMD_WRITE_ZEROES:
          work = backend.writeZeroes(slot.offsetBytes, slot.lengthBytes, WRITE_ZEROES_OPTIONS[fua | ((slot.flags & NBD_CMD_FLAG_NO_HOLE) !== 0 ? 2 : 0)]!);
          break;
        default:
          assert(false, `requestRule admitted only known commands, not ${slot.type}`);
      }
      work.then(slot.onResolved, slot.onRejected);
    } catch (failure) {
      slot.onRejected(failure);
    }
  }

  /** For RequestSlot: the backend finished the request's work. */
  onBackendResolved(slot: RequestSlot, value: unknown): void {
    if (slot.state !== 'running') return;
    if (slot.type === NBD_CMD_READ) {
      if (!Buffer.isBuffer(value) || value.length !== slot.lengthBytes) {
        this.onBackendRejected(slot, new Error(`backend read returned ${Buffer.isBuffer(value) ? `${value.length} bytes` : typeof value} for ${slot.lengthBytes}`));
        return;
      }
      slot.data = value;
      if (value !== slot.view) this.releasePayload(slot); // the backend handed back its own buffer
    } else if (slot.type === NBD_CMD_WRITE) {
      const acknowledgement = value as Partial<NbdEarlyAcknowledgement> | undefined;
      if (typeof acknowledgement?.dataReleased?.then === 'function') {
        // Replied early: the buffer stays lent (counted in the pool) until the backend lets it go.
        const pool = this.pool!;
        const buffer = slot.buffer!;
        slot.buffer = undefined;
        slot.view = undefined;
        const giveBack = () => pool.release(buffer);
        acknowledgement.dataReleased.then(giveBack, giveBack);
      } else {
        this.releasePayload(slot);
      }
    } else if (slot.type === NBD_CMD_TRIM && slot.flushAfterTrim) {
      slot.flushAfterTrim = false;
      try {
        this.server.backend.flush().then(slot.onResolved, slot.onRejected);
      } catch (failure) {
        slot.onRejected(failure);
      }
      return;
    }
    slot.error = 0;
    this.queueReply(slot);
  }

  /** For RequestSlot: the backend failed the request. */
  onBackendRejected(slot: RequestSlot, failure: unknown): void {
    if (slot.state !== 'running') return;
    const mapped = nbdErrorForFailure(failure);
    const message = failure instanceof Error ? failure.message : String(failure);
    if (mapped.expected) this.log('debug', `${describeSlot(slot)} failed: ${message}`);
    // jraid's own errors say what happened and where (a cluster node that did not follow, say):
    // their message and code; anything else may be a bug, and its stack says where.
    else if (failure instanceof JraidError) this.log('error', `${describeSlot(slot)} failed unexpectedly: ${message} [${failure.code}]`);
    else this.log('error', `${describeSlot(slot)} failed unexpectedly: ${failure instanceof Error ? failure.stack ?? message : message}`);
    slot.flushAfterTrim = false;
    slot.data = undefined;
    this.releasePayload(slot); // settled: the backend no longer touches it
    slot.error = mapped.error;
    this.queueReply(slot);
  }

  private releasePayload(slot: RequestSlot): void {
    const buffer = slot.buffer;
    if (buffer === undefined) return;
    slot.buffer = undefined;
    slot.view = undefined;
    this.pool!.release(buffer);
  }

  // --- Transmission: replies ----------------------------------------------------------------

  /** Queues the slot's reply for the next batch, written once this turn of the event loop has run its other callbacks. */
  private queueReply(slot: RequestSlot): void {
    if (slot.error !== 0 && !NBD_ERRORS.has(slot.error)) assert(false, `reply error ${slot.error} is one the spec defines`);
    slot.replyHeader.writeUInt32BE(slot.error, 4);
    if (slot.error !== 0) slot.data = undefined; // a failed READ sends no payload, so the stream stays in step
    if (this.stream.destroyed || this.stream.writableEnded) {
      this.finish(slot);
      return;
    }
    slot.state = 'ready';
    this.ready.push(slot);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushReplies);
    }
  }

  /** Writes every ready reply in one corked batch; with both batches still being written, waits for one. */
  private writeReadyReplies(): void {
    this.flushScheduled = false;
    if (this.ready.length === 0) return;
    if (this.stream.destroyed || this.stream.writableEnded) {
      while (this.ready.length > 0) this.finish(this.ready.pop()!);
      return;
    }
    let batch: ReplyBatch | undefined;
    for (let index = 0; index < this.batches.length && batch === undefined; index++) {
      if (!this.batches[index]!.busy) batch = this.batches[index];
    }
    if (batch === undefined) return; // onBatchWritten calls again
    // The ready list becomes the batch's, and the batch's empty list the next ready list.
    const slots = this.ready;
    this.ready = batch.slots;
    batch.slots = slots;
    batch.busy = true;
    let reads = 0;
    for (let index = 0; index < slots.length; index++) {
      const slot = slots[index]!;
      slot.state = 'replying';
      if (slot.data !== undefined) reads++;
    }
    const headers = batch.gatherHeaders();
    // Writes leave in order, so the last one's callback says the whole batch has been written.
    this.stream.cork();
    if (headers !== undefined) {
      if (reads === 0) this.stream.write(headers, batch.onWritten);
      else this.stream.write(headers);
    }
    for (let index = 0; index < slots.length; index++) {
      const slot = slots[index]!;
      if (slot.data === undefined) continue;
      this.stream.write(slot.replyHeader);
      if (--reads === 0) this.stream.write(slot.data, batch.onWritten);
      else this.stream.write(slot.data);
    }
    this.stream.uncork();
  }

  /** The batch has left (or never will: the stream is gone): its requests' slots are free again. */
  private onBatchWritten(batch: ReplyBatch): void {
    if (!batch.busy) return;
    batch.busy = false;
    const slots = batch.slots;
    for (let index = 0; index < slots.length; index++) this.finish(slots[index]!);
    slots.length = 0;
    if (this.ready.length > 0) this.writeReadyReplies();
  }

  /** The request is over (its reply written, or never to be): frees its slot and payload. */
  private finish(slot: RequestSlot): void {
    if (slot.state === 'free' || slot.state === 'parsed') return;
    slot.data = undefined;
    this.inflightCount--;
    // Freed before its buffer goes back: the pool's callback may admit the next request into it.
    this.freeSlot(slot);
    this.releasePayload(slot);
    if (this.phase === 'draining') this.endIfDrained();
    else if (this.phase === 'closed') this.resolveIfIdle();
    else if (this.state.kind === 'admission') this.pump();
  }

  private freeSlot(slot: RequestSlot): void {
    slot.state = 'free';
    this.freeSlots.push(slot);
  }

  // --- Closing ------------------------------------------------------------------------------

  /** Stops reading, lets every admitted request finish and reply, then ends the stream. */
  private drainAndClose(reason: string): void {
    if (this.phase !== 'handshake' && this.phase !== 'transmission') return;
    this.log('debug', `draining ${this.inflightCount} requests: ${reason}`);
    this.stopReading();
    this.phase = 'draining';
    this.endIfDrained();
  }

  private endIfDrained(): void {
    if (this.inflightCount === 0) this.endAndLinger();
  }

  /**
   * Sends FIN after the last reply, then keeps reading and discarding until the peer closes
   * (or closeLingerMs passes): closing a socket with unread input makes the kernel send a reset,
   * which could destroy replies the client has not read yet.
   */
  private endAndLinger(): void {
    if (this.phase === 'lingering' || this.phase === 'closed') return;
    this.phase = 'lingering';
    this.stream.end(() => {
      if (this.stream.readableEnded) this.stream.destroy();
      else if (!this.stream.destroyed) this.lingerTimer = setTimeout(() => this.stream.destroy(), this.server.limits.closeLingerMs);
    });
    this.stream.resume();
  }

  private onClose(): void {
    if (this.phase === 'closed') return;
    if (this.state.kind !== 'stopped') this.stopReading();
    this.phase = 'closed';
    clearTimeout(this.lingerTimer);
    clearTimeout(this.handshakeTimer);
    // Replies handed to the stream will never leave now; requests still in the backend free their slots when they return.
    for (const batch of this.batches) this.onBatchWritten(batch);
    while (this.ready.length > 0) this.finish(this.ready.pop()!);
    this.log('debug', 'closed');
    this.resolveIfIdle();
  }

  /** `closed` resolves only once the backend has returned from every request, so close() never leaves backend calls running. */
  private resolveIfIdle(): void {
    if (this.phase !== 'closed' || this.inflightCount !== 0) return;
    // Payloads the backend still holds (early acknowledgements) are dropped as they come back.
    this.pool?.close();
    this.resolveClosed();
  }

  private write(bytes: Buffer): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.write(bytes);
  }
}

function describeSlot(slot: RequestSlot): string {
  const offset = slot.offsetHigh < 2 ** 21 ? String(slot.offsetBytes) : String((BigInt(slot.offsetHigh) << 32n) | BigInt(slot.offsetLow));
  return `${COMMAND_NAMES.get(slot.type) ?? `command ${slot.type}`} of ${slot.lengthBytes} bytes at ${offset}`;
}
