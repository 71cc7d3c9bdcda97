// The NBD server: exports one block backend over the fixed newstyle protocol (nbd-protocol.ts)
// on Unix sockets and TCP. It knows nothing of RAID: anything with read/write/flush/trim/
// writeZeroes can be served, and jraid's array is one such backend.
//
// Each connection reads requests as a state machine over its input bytes, runs every request
// as its own task, and writes each reply whole (replies may leave out of order). Memory is
// bounded by three named limits: requests in flight per connection, payload bytes in flight
// per connection, and payload bytes in flight across the server. When a request does not fit,
// the connection stops reading its socket until enough requests complete (backpressure).
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
import {
  CLIENT_FLAGS_SIZE_BYTES, NBD_CMD_DISC, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM,
  NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EIO, NBD_ENOSPC, NBD_EPERM, NBD_ERRORS, NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_HAS_FLAGS, NBD_FLAG_NO_ZEROES,
  NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES, NBD_INFO_DESCRIPTION, NBD_INFO_NAME,
  NBD_OPT_ABORT, NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPT_STARTTLS, NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_POLICY, NBD_REP_ERR_TOO_BIG, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_INFO, NBD_REP_SERVER,
  NBD_STRING_BYTES_MAX, OPTION_HEADER_SIZE_BYTES, REQUEST_HEADER_SIZE_BYTES, blockSizeConstraintsProblem, checkRequest,
  decodeInfoRequest, decodeOptionHeader, decodeRequestHeader, encodeExportNameReply, encodeGreeting, encodeInfoBlockSize,
  encodeInfoDescription, encodeInfoExport, encodeInfoName, encodeOptionReply, encodeServerReplyData, encodeSimpleReplyHeader,
  type BlockSizeConstraints, type RequestCheck, type RequestHeader,
} from './nbd-protocol.js';

/** What the server exports. Every range the server passes is non-empty and lies inside [0, sizeBytes). */
export interface NbdBackend {
  readonly sizeBytes: number;
  read(offsetBytes: number, lengthBytes: number): Promise<Buffer>;
  write(offsetBytes: number, data: Buffer, options: { fua: boolean }): Promise<void>;
  /** Makes every completed write, from every connection, durable. */
  flush(): Promise<void>;
  trim(offsetBytes: number, lengthBytes: number): Promise<void>;
  writeZeroes(offsetBytes: number, lengthBytes: number, options: { fua: boolean; noHole: boolean }): Promise<void>;
}

export type NbdLogLevel = 'debug' | 'info' | 'warn' | 'error';
export type NbdLogger = (level: NbdLogLevel, message: string) => void;

export type NbdAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export interface NbdLimits {
  /** Longest READ, WRITE or WRITE_ZEROES accepted; advertised as the maximum block size. */
  blockSizeMaxBytes: number;
  /** Requests one connection may have between header and flushed reply. */
  inflightRequestsMax: number;
  /** READ and WRITE payload bytes one connection may hold at once. */
  connectionPayloadBytesMax: number;
  /** READ and WRITE payload bytes all connections together may hold at once. */
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

export const NBD_BLOCK_SIZE_MIN_BYTES = 1;
export const NBD_BLOCK_SIZE_PREFERRED_BYTES = 4 * KIB;

export const NBD_LIMITS_DEFAULT: Readonly<NbdLimits> = Object.freeze({
  blockSizeMaxBytes: 32 * MIB,
  inflightRequestsMax: 64,
  connectionPayloadBytesMax: 64 * MIB,
  serverPayloadBytesMax: 256 * MIB,
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

// --- Payload budget shared by all connections ---------------------------------------------

interface BudgetWaiter {
  readonly bytes: number;
  state: 'waiting' | 'granted' | 'cancelled';
  readonly onGranted: () => void;
}

/** Bytes of READ/WRITE payload the server may hold. First come, first served, so a large request is not starved by small ones. */
class PayloadBudget {
  private availableBytes: number;
  private readonly waiters: BudgetWaiter[] = [];

  constructor(readonly capacityBytes: number) {
    this.availableBytes = capacityBytes;
  }

  /** 'granted' now, or a waiter whose onGranted runs (asynchronously) once the bytes are reserved for it. */
  reserve(bytes: number, onGranted: () => void): 'granted' | BudgetWaiter {
    assert(bytes > 0 && bytes <= this.capacityBytes, `budget request of ${bytes} bytes fits capacity ${this.capacityBytes}`);
    if (this.waiters.length === 0 && bytes <= this.availableBytes) {
      this.availableBytes -= bytes;
      return 'granted';
    }
    const waiter: BudgetWaiter = { bytes, state: 'waiting', onGranted };
    this.waiters.push(waiter);
    return waiter;
  }

  release(bytes: number): void {
    this.availableBytes += bytes;
    assert(this.availableBytes <= this.capacityBytes, 'budget released no more than was reserved');
    this.grantWaiters();
  }

  /** Withdraws a waiter; bytes already granted to it are returned. */
  cancel(waiter: BudgetWaiter): void {
    if (waiter.state === 'waiting') {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.state = 'cancelled';
      this.grantWaiters();
    } else if (waiter.state === 'granted') {
      waiter.state = 'cancelled';
      this.release(waiter.bytes);
    }
  }

  private grantWaiters(): void {
    while (this.waiters.length > 0 && this.waiters[0]!.bytes <= this.availableBytes) {
      const waiter = this.waiters.shift()!;
      this.availableBytes -= waiter.bytes;
      waiter.state = 'granted';
      // Deferred so a release inside one connection's callback never re-enters another connection.
      queueMicrotask(() => {
        if (waiter.state === 'granted') waiter.onGranted();
      });
    }
  }
}

// --- Input bytes --------------------------------------------------------------------------

/** Bytes received and not yet consumed; bounded because the socket is paused whenever the parser stops consuming. */
class ByteQueue {
  private readonly chunks: Buffer[] = [];
  lengthBytes = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.lengthBytes += chunk.length;
  }

  /** Exactly `count` bytes (copied only when they span chunks). */
  take(count: number): Buffer {
    assert(count <= this.lengthBytes, `take ${count} of ${this.lengthBytes} queued bytes`);
    const first = this.chunks[0];
    if (first !== undefined && first.length >= count) return this.takeUpTo(count);
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const piece = this.takeUpTo(count - filled);
      piece.copy(out, filled);
      filled += piece.length;
    }
    return out;
  }

  /** Between 1 and `count` bytes from the front, without copying. */
  takeUpTo(count: number): Buffer {
    const first = this.chunks[0];
    assert(first !== undefined && count > 0, 'takeUpTo from a non-empty queue');
    const piece = first.length <= count ? this.chunks.shift()! : first.subarray(0, count);
    if (piece !== first) this.chunks[0] = first.subarray(count);
    this.lengthBytes -= piece.length;
    return piece;
  }

  clear(): void {
    this.chunks.length = 0;
    this.lengthBytes = 0;
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
  /** Payload bytes all connections draw from (serverPayloadBytesMax). */
  readonly budget: PayloadBudget;
  private readonly listeners: { netServer: net.Server; address: NbdAddress }[] = [];
  private readonly connections = new Set<NbdConnection>();
  private nextConnectionId = 1;
  private closing: Promise<void> | undefined;

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
    void connection.closed.then(() => this.connections.delete(connection));
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
  | { kind: 'client-flags' }
  | { kind: 'option-header' }
  | { kind: 'option-data'; option: number; lengthBytes: number }
  | { kind: 'option-discard'; option: number; remainingBytes: number }
  | { kind: 'request-header' }
  | { kind: 'admission'; request: PendingRequest }
  | { kind: 'write-payload'; request: PendingRequest; entry: InflightEntry; payload: Buffer; receivedBytes: number }
  | { kind: 'payload-discard'; request: PendingRequest; entry: InflightEntry; remainingBytes: number }
  | { kind: 'stopped' };

interface PendingRequest {
  header: RequestHeader;
  check: RequestCheck;
  /** READ or WRITE payload this request will hold in memory (0 when it is refused). */
  payloadBytes: number;
  budgetGranted: boolean;
  budgetWaiter: BudgetWaiter | undefined;
}

/** A request from admission until its reply has left (or can never leave). */
interface InflightEntry {
  payloadBytes: number;
  /** The reply has been handed to the stream; only its write callback is outstanding. */
  replying: boolean;
  done: boolean;
}

type Phase = 'handshake' | 'transmission' | 'draining' | 'lingering' | 'closed';

const COMMAND_NAMES: ReadonlyMap<number, string> = new Map([
  [NBD_CMD_READ, 'read'], [NBD_CMD_WRITE, 'write'], [NBD_CMD_DISC, 'disc'], [NBD_CMD_FLUSH, 'flush'],
  [NBD_CMD_TRIM, 'trim'], [NBD_CMD_WRITE_ZEROES, 'write-zeroes'],
]);

class NbdConnection {
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private phase: Phase = 'handshake';
  private state: ReadState = { kind: 'client-flags' };
  private readonly input = new ByteQueue();
  private readonly inflight = new Set<InflightEntry>();
  private inflightPayloadBytes = 0;
  private optionsReceived = 0;
  private noZeroes = false;
  private exportSizeBytes = 0;
  private pumping = false;
  /** The peer has sent its last byte: what is queued is still parsed and answered. */
  private inputEnded = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;

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
        this.state = { kind: 'option-header' };
        this.onOption(state.option, state.lengthBytes === 0 ? Buffer.alloc(0) : this.input.take(state.lengthBytes));
        return true;
      case 'option-discard':
        if (state.remainingBytes > 0) {
          if (this.input.lengthBytes === 0) return false;
          state.remainingBytes -= this.input.takeUpTo(state.remainingBytes).length;
          return true;
        }
        this.state = { kind: 'option-header' };
        this.replyOption(state.option, NBD_REP_ERR_TOO_BIG, `option data longer than ${this.server.limits.optionDataBytesMax} bytes`);
        return true;
      case 'request-header':
        if (this.input.lengthBytes < REQUEST_HEADER_SIZE_BYTES) return false;
        this.onRequestHeader(this.input.take(REQUEST_HEADER_SIZE_BYTES));
        return true;
      case 'admission':
        return this.admit(state.request);
      case 'write-payload':
        if (this.input.lengthBytes === 0) return false;
        this.receivePayload(state);
        return true;
      case 'payload-discard':
        if (state.remainingBytes > 0) {
          if (this.input.lengthBytes === 0) return false;
          state.remainingBytes -= this.input.takeUpTo(state.remainingBytes).length;
          return true;
        }
        this.state = { kind: 'request-header' };
        this.reply(state.entry, state.request.header.handle, state.request.check.error);
        return true;
      case 'stopped':
        return false;
    }
  }

  private stopReading(): void {
    if (this.state.kind === 'admission') {
      const waiter = this.state.request.budgetWaiter;
      if (waiter !== undefined) this.server.budget.cancel(waiter);
      else if (this.state.request.budgetGranted) this.server.budget.release(this.state.request.payloadBytes);
    }
    // A write whose payload never fully arrived never reaches the backend.
    if (this.state.kind === 'write-payload' || this.state.kind === 'payload-discard') this.finish(this.state.entry);
    this.state = { kind: 'stopped' };
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
    this.state = { kind: 'option-header' };
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
    this.state = { kind: 'request-header' };
    this.log('debug', `transmission: ${this.exportSizeBytes} bytes`);
  }

  // --- Transmission: parsing and admission --------------------------------------------------

  private onRequestHeader(bytes: Buffer): void {
    const decoded = decodeRequestHeader(bytes);
    if (!decoded.ok) {
      // Without the magic we cannot know where anything starts: finish what is in flight and close.
      this.drainAndClose(decoded.reason);
      return;
    }
    const header = decoded.header;
    if (header.type === NBD_CMD_DISC) {
      this.drainAndClose('client sent NBD_CMD_DISC');
      return;
    }
    const check = checkRequest(header, { exportSizeBytes: this.exportSizeBytes, blockSizeMaxBytes: this.server.limits.blockSizeMaxBytes });
    if (check.error !== 0) this.log('debug', `refusing ${describeRequest(header)}: ${check.reason}`);
    const holdsPayload = check.error === 0 && (header.type === NBD_CMD_READ || header.type === NBD_CMD_WRITE);
    const request: PendingRequest = { header, check, payloadBytes: holdsPayload ? header.lengthBytes : 0, budgetGranted: false, budgetWaiter: undefined };
    this.state = { kind: 'admission', request };
  }

  /** Admits the request if the bounds allow; otherwise leaves it waiting (the stream is paused) and returns false. */
  private admit(request: PendingRequest): boolean {
    const limits = this.server.limits;
    if (this.inflight.size >= limits.inflightRequestsMax) return false;
    if (this.inflightPayloadBytes + request.payloadBytes > limits.connectionPayloadBytesMax) return false;
    if (request.payloadBytes > 0 && !request.budgetGranted) {
      if (request.budgetWaiter !== undefined) return false;
      const reservation = this.server.budget.reserve(request.payloadBytes, () => {
        request.budgetGranted = true;
        request.budgetWaiter = undefined;
        this.pump();
      });
      if (reservation !== 'granted') {
        request.budgetWaiter = reservation;
        return false;
      }
      request.budgetGranted = true;
    }
    const entry: InflightEntry = { payloadBytes: request.payloadBytes, replying: false, done: false };
    this.inflight.add(entry);
    this.inflightPayloadBytes += entry.payloadBytes;
    this.dispatch(request, entry);
    return true;
  }

  private dispatch(request: PendingRequest, entry: InflightEntry): void {
    const { header, check } = request;
    this.state = { kind: 'request-header' };
    if (check.disconnect) {
      this.reply(entry, header.handle, check.error);
      this.drainAndClose(check.reason ?? 'request cannot be trusted');
    } else if (check.error !== 0 && check.payloadBytes > 0) {
      this.state = { kind: 'payload-discard', request, entry, remainingBytes: check.payloadBytes };
    } else if (check.error !== 0) {
      this.reply(entry, header.handle, check.error);
    } else if (header.type === NBD_CMD_WRITE) {
      this.state = { kind: 'write-payload', request, entry, payload: Buffer.allocUnsafe(header.lengthBytes), receivedBytes: 0 };
    } else {
      void this.run(header, entry, undefined);
    }
  }

  private receivePayload(state: Extract<ReadState, { kind: 'write-payload' }>): void {
    const piece = this.input.takeUpTo(state.payload.length - state.receivedBytes);
    piece.copy(state.payload, state.receivedBytes);
    state.receivedBytes += piece.length;
    if (state.receivedBytes === state.payload.length) {
      this.state = { kind: 'request-header' };
      void this.run(state.request.header, state.entry, state.payload);
    }
  }

  // --- Transmission: running requests and replying ------------------------------------------

  private async run(header: RequestHeader, entry: InflightEntry, payload: Buffer | undefined): Promise<void> {
    const offsetBytes = Number(header.offset);
    // The checkpoint (checkRequest) let nothing else through; a request outside the export here is our bug.
    assert(offsetBytes + header.lengthBytes <= this.exportSizeBytes, `${describeRequest(header)} inside the export`);
    let error = 0;
    let data: Buffer | undefined;
    try {
      data = await this.execute(header, offsetBytes, payload);
    } catch (failure) {
      const mapped = nbdErrorForFailure(failure);
      error = mapped.error;
      const message = failure instanceof Error ? failure.message : String(failure);
      if (mapped.expected) this.log('debug', `${describeRequest(header)} failed: ${message}`);
      else this.log('error', `${describeRequest(header)} failed unexpectedly: ${failure instanceof Error ? failure.stack ?? message : message}`);
    }
    this.reply(entry, header.handle, error, error === 0 ? data : undefined);
  }

  private async execute(header: RequestHeader, offsetBytes: number, payload: Buffer | undefined): Promise<Buffer | undefined> {
    const backend = this.server.backend;
    const fua = (header.flags & NBD_CMD_FLAG_FUA) !== 0;
    switch (header.type) {
      case NBD_CMD_READ: {
        const data = await backend.read(offsetBytes, header.lengthBytes);
        if (!Buffer.isBuffer(data) || data.length !== header.lengthBytes) {
          throw new Error(`backend read returned ${Buffer.isBuffer(data) ? `${data.length} bytes` : typeof data} for ${header.lengthBytes}`);
        }
        return data;
      }
      case NBD_CMD_WRITE:
        assert(payload !== undefined && payload.length === header.lengthBytes, 'a write runs with its whole payload');
        await backend.write(offsetBytes, payload, { fua });
        return undefined;
      case NBD_CMD_FLUSH:
        await backend.flush();
        return undefined;
      case NBD_CMD_TRIM:
        await backend.trim(offsetBytes, header.lengthBytes);
        if (fua) await backend.flush(); // the backend's trim has no FUA of its own
        return undefined;
      case NBD_CMD_WRITE_ZEROES:
        await backend.writeZeroes(offsetBytes, header.lengthBytes, { fua, noHole: (header.flags & NBD_CMD_FLAG_NO_HOLE) !== 0 });
        return undefined;
      default:
        assert(false, `checkRequest admitted only known commands, not ${header.type}`);
    }
  }

  /** Writes one simple reply whole (header and read data corked together), then frees the request's slot once it has left. */
  private reply(entry: InflightEntry, handle: bigint, error: number, data?: Buffer): void {
    if (this.stream.destroyed || this.stream.writableEnded) {
      this.finish(entry);
      return;
    }
    const header = encodeSimpleReplyHeader(error, handle);
    entry.replying = true;
    if (data === undefined) {
      this.stream.write(header, () => this.finish(entry));
      return;
    }
    this.stream.cork();
    this.stream.write(header);
    this.stream.write(data, () => this.finish(entry));
    this.stream.uncork();
  }

  private finish(entry: InflightEntry): void {
    if (entry.done) return;
    entry.done = true;
    this.inflight.delete(entry);
    this.inflightPayloadBytes -= entry.payloadBytes;
    if (entry.payloadBytes > 0) this.server.budget.release(entry.payloadBytes);
    if (this.phase === 'draining') this.endIfDrained();
    else if (this.phase === 'closed') this.resolveIfIdle();
    else if (this.state.kind === 'admission') this.pump();
  }

  // --- Closing ------------------------------------------------------------------------------

  /** Stops reading, lets every admitted request finish and reply, then ends the stream. */
  private drainAndClose(reason: string): void {
    if (this.phase !== 'handshake' && this.phase !== 'transmission') return;
    this.log('debug', `draining ${this.inflight.size} requests: ${reason}`);
    this.stopReading();
    this.phase = 'draining';
    this.endIfDrained();
  }

  private endIfDrained(): void {
    if (this.inflight.size === 0) this.endAndLinger();
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
    for (const entry of [...this.inflight]) {
      if (entry.replying) this.finish(entry);
    }
    this.log('debug', 'closed');
    this.resolveIfIdle();
  }

  /** `closed` resolves only once the backend has returned from every request, so close() never leaves backend calls running. */
  private resolveIfIdle(): void {
    if (this.phase === 'closed' && this.inflight.size === 0) this.resolveClosed();
  }

  private write(bytes: Buffer): void {
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.write(bytes);
  }
}

function describeRequest(header: RequestHeader): string {
  return `${COMMAND_NAMES.get(header.type) ?? `command ${header.type}`} of ${header.lengthBytes} bytes at ${header.offset}`;
}
