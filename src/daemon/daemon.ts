// The daemon: one per array (the member lock enforces it). It assembles the array (running
// recovery when needed), exports it over NBD, answers the CLI on a control socket (mode 0600),
// and stops cleanly on SIGTERM, SIGINT or `jraid stop`: no new requests, in-flight ones
// drained, everything flushed, a clean journal record, members closed.

import { chmod, rm, stat } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Assembled } from '../engine/assemble.js';
import { openArray, type ArraySpec } from '../engine/open.js';
import { lostMemberNames, opAdd, opDetail, opFailDisk, opReAdd, opRebuild, opRecover, opRemove, opScrub, type OpContext } from '../engine/operations.js';
import { JraidError, isJraidError } from '../errors.js';
import { formatUuid } from '../format/uuid.js';
import { STRIPES_IN_FLIGHT_MAX } from '../engine/raid-array.js';
import { STRIPE_LOCK_WAITERS_MAX } from '../engine/stripe-lock.js';
import { assert } from '../units.js';
import { ArrayBackend, FAST_WRITES_PENDING_MAX, type Toughness } from './array-backend.js';
import { BoundedCount } from './bounded-count.js';
import { FrameReader, writeFrame, type ControlFrame } from './control-protocol.js';
import { NbdServer, type NbdAddress, type NbdLimits } from './nbd-server.js';
import { ensureRunDir, removeRegistry, writeRegistry } from './registry.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type Logger = (level: LogLevel, message: string) => void;

export interface DaemonOptions {
  spec: string;
  configFile: string;
  controlSocket?: string;
  nbd: NbdAddress[];
  toughness: Toughness;
  logger: Logger;
  logFile: string | null;
  idleCleanMs?: number;
  /** NBD connection cap and handshake timeout (defaults: NBD_LIMITS_DEFAULT). */
  nbdLimits?: Partial<Pick<NbdLimits, 'connectionsMax' | 'handshakeTimeoutMs'>>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** "unix:PATH" or "tcp:HOST:PORT" (IPv6 hosts in brackets). Non-loopback TCP needs listenAny. */
export function parseNbdAddress(text: string, listenAny: boolean): NbdAddress {
  if (text.startsWith('unix:') && text.length > 5) return { kind: 'unix', path: text.slice(5) };
  const tcp = /^tcp:(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  if (tcp) {
    const host = tcp[1]!.replace(/^\[|\]$/g, '');
    const port = Number(tcp[2]);
    if (port > 65535) throw new JraidError('E_USAGE', `port ${port} is out of range`);
    if (!LOOPBACK.test(host) && !listenAny) {
      throw new JraidError('E_USAGE', `--nbd ${text} listens beyond this machine`, { hint: 'add --listen-any to serve a non-loopback address' });
    }
    return { kind: 'tcp', host, port };
  }
  throw new JraidError('E_USAGE', `--nbd "${text}" is not unix:PATH or tcp:HOST:PORT`);
}

export function describeNbdAddress(address: NbdAddress): string {
  return address.kind === 'unix' ? `nbd+unix:///?socket=${address.path}` : `nbd://${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}/`;
}

/** Control-socket operations answered at once; one more is refused as busy (the CLI retries or says so). */
export const CONTROL_OPS_INFLIGHT_MAX = 32;

/**
 * Array calls the daemon can have at once: NBD requests in flight, fast writes replied to and
 * unfinished, and control operations. Each keeps at most STRIPES_IN_FLIGHT_MAX stripe locks
 * held or awaited, so together they must fit the stripe locks' bound.
 */
function assertCallBounds(nbd: NbdLimits): void {
  const callsMax = nbd.connectionsMax * nbd.inflightRequestsMax + FAST_WRITES_PENDING_MAX + CONTROL_OPS_INFLIGHT_MAX;
  assert(callsMax * STRIPES_IN_FLIGHT_MAX <= STRIPE_LOCK_WAITERS_MAX,
    `daemon array calls (${callsMax}) x stripes each (${STRIPES_IN_FLIGHT_MAX}) <= stripe-lock waiters max (${STRIPE_LOCK_WAITERS_MAX})`);
}

export class Daemon {
  readonly assembled: Assembled & { spec: ArraySpec };
  readonly backend: ArrayBackend;
  readonly nbd: NbdServer;
  readonly controlSocket: string;
  private control: Server | undefined;
  private readonly log: Logger;
  private readonly connections = new Set<Socket>();
  private readonly controlOps = new BoundedCount('control operations in flight', CONTROL_OPS_INFLIGHT_MAX);
  private stopping: Promise<void> | undefined;
  private readonly uuid: string;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  private constructor(assembled: Assembled & { spec: ArraySpec }, options: DaemonOptions, controlSocket: string) {
    this.assembled = assembled;
    this.log = options.logger;
    this.controlSocket = controlSocket;
    this.uuid = formatUuid(assembled.array.sb.arrayUuid);
    this.backend = new ArrayBackend(assembled.array, options.toughness);
    this.nbd = new NbdServer({
      backend: this.backend,
      description: `jraid ${assembled.array.sb.name || this.uuid} (RAID-${assembled.array.sb.level})`,
      multiConn: true, // FLUSH syncs every member: it covers writes from every connection
      logger: (level, message) => this.log(level, `nbd: ${message}`),
      limits: options.nbdLimits,
    });
    assertCallBounds(this.nbd.limits);
    this.done = new Promise((resolve) => { this.resolveDone = resolve; });
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    const assembled = await openArray(options.spec, options.configFile, {
      journal: { idleCleanMs: options.idleCleanMs },
      onEvent: (event) => {
        if (event.kind === 'member-failed') options.logger('error', `member ${event.path} (role ${event.role ?? '-'}) failed: ${event.reason}; the array runs degraded`);
        else if (event.kind === 'read-error-corrected') options.logger('warn', `read error on ${event.path} at member data byte ${event.memberDataOffsetBytes}: rebuilt from parity and rewritten`);
      },
    });
    const { array, report } = assembled;
    const name = array.sb.name || formatUuid(array.sb.arrayUuid);
    for (const note of report.notes) options.logger('info', note);
    let dir: string;
    try {
      dir = await ensureRunDir();
    } catch (error) {
      // Nothing serves yet: close the array (it is clean: nothing was written) and go.
      await array.close().catch(() => {});
      await assembled.release();
      throw error;
    }
    const controlSocket = options.controlSocket ?? join(dir, `${formatUuid(array.sb.arrayUuid)}.sock`);
    const daemon = new Daemon(assembled, options, controlSocket);
    try {
      const addresses = options.nbd.length > 0 ? options.nbd : [{ kind: 'unix' as const, path: join(dir, `${name}.nbd`) }];
      for (const address of addresses) {
        if (address.kind === 'unix') {
          await checkSocketDirectory(address.path, `NBD on unix:${address.path}`);
          await removeStaleSocket(address.path);
        }
        const bound = await daemon.nbd.listen(address);
        options.logger('info', `serving NBD on ${describeNbdAddress(bound)}`);
      }
      await daemon.listenControl();
      await writeRegistry({
        uuid: daemon.uuid, name, pid: process.pid, controlSocket, nbd: daemon.nbd.addresses.map(describeNbdAddress),
        log: options.logFile, toughness: options.toughness, startedAt: new Date().toISOString(),
      });
      options.logger('info', `array ${name}: ${array.state()}, ${array.sizeBytes} bytes, toughness ${options.toughness}, control socket ${controlSocket}`);
    } catch (error) {
      await daemon.stop('start failed').catch(() => {});
      throw error;
    }
    return daemon;
  }

  get addresses(): string[] {
    return this.nbd.addresses.map(describeNbdAddress);
  }

  private async listenControl(): Promise<void> {
    await checkSocketDirectory(this.controlSocket, `the control socket on ${this.controlSocket}`);
    await removeStaleSocket(this.controlSocket);
    const server = createServer((socket) => this.serveControl(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new JraidError('E_DAEMON', `cannot listen on ${this.controlSocket}: ${error.code ?? error.message}`, { path: this.controlSocket })));
      server.listen(this.controlSocket, () => resolve());
    });
    await chmod(this.controlSocket, 0o600);
    // After listening, an error is a failed accept (out of descriptors: EMFILE): log it and serve on.
    server.removeAllListeners('error');
    server.on('error', (error: NodeJS.ErrnoException) => this.log('warn', `control socket: ${error.code ?? error.message}; a CLI connection was dropped`));
    this.control = server;
  }

  private serveControl(socket: Socket): void {
    this.connections.add(socket);
    const reader = new FrameReader();
    socket.on('data', (chunk: Buffer) => {
      let frames: ControlFrame[];
      try {
        frames = reader.push(chunk);
      } catch (error) {
        this.log('warn', `control: dropping a client: ${(error as Error).message}`);
        socket.destroy();
        return;
      }
      for (const frame of frames) void this.answer(socket, frame);
    });
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private async answer(socket: Socket, frame: ControlFrame): Promise<void> {
    const id = frame.header.id;
    const op = String(frame.header.op);
    if (!this.controlOps.tryEnter()) {
      const busy = { code: 'E_DAEMON', message: `the daemon is busy: ${CONTROL_OPS_INFLIGHT_MAX} control operations are in flight`, hint: 'retry once some have finished' };
      if (!socket.destroyed) await writeFrame(socket, { id, ok: false, error: busy }).catch(() => {});
      return;
    }
    try {
      await this.answerAdmitted(socket, frame, id, op);
    } finally {
      this.controlOps.leave();
    }
  }

  private async answerAdmitted(socket: Socket, frame: ControlFrame, id: unknown, op: string): Promise<void> {
    const args = (frame.header.args ?? {}) as Record<string, unknown>;
    const onProgress = (progress: { doneBytes: number; totalBytes: number }) => {
      if (!socket.destroyed) void writeFrame(socket, { id, progress }).catch(() => {});
    };
    const onMembersChanged = async (members: string[]) => {
      if (!socket.destroyed) await writeFrame(socket, { id, members }).catch(() => {});
    };
    try {
      const { result, payload } = await this.dispatch(op, args, frame.payload, { onProgress, onMembersChanged });
      if (!socket.destroyed) await writeFrame(socket, { id, ok: true, result }, payload);
      if (op === 'stop') void this.stop('jraid stop');
    } catch (error) {
      const failure = isJraidError(error) ? error : new JraidError('E_DAEMON', `internal error in the daemon: ${(error as Error)?.message ?? String(error)}`);
      if (!isJraidError(error)) this.log('error', `control ${op}: ${(error as Error)?.stack ?? String(error)}`);
      if (!socket.destroyed) {
        await writeFrame(socket, { id, ok: false, error: { code: failure.code, message: failure.message, path: failure.path, hint: failure.hint, details: failure.details } }).catch(() => {});
      }
    }
  }

  private async dispatch(op: string, args: Record<string, unknown>, payload: Buffer, context: OpContext): Promise<{ result: unknown; payload?: Buffer }> {
    const { array } = this.assembled;
    if (this.stopping && op !== 'status') throw new JraidError('E_DAEMON', 'the daemon is stopping', { hint: 'retry once it has stopped' });
    switch (op) {
      case 'status':
        return {
          result: {
            pid: process.pid, uuid: this.uuid, sizeBytes: array.sizeBytes, state: array.state(), health: array.health(), lostMembers: lostMemberNames(array),
            toughness: this.backend.toughness, nbd: this.addresses, connections: this.nbd.connectionCount,
            nbdWrites: this.backend.writesDone, syncs: this.backend.syncsDone,
            journal: array.journal?.stats ?? null,
          },
        };
      case 'detail':
        return { result: { ...opDetail(this.assembled), daemon: { pid: process.pid, nbd: this.addresses, toughness: this.backend.toughness, controlSocket: this.controlSocket } } };
      case 'write':
        await array.write(Number(args.offset), payload);
        return { result: { bytesWritten: payload.length } };
      case 'flush':
        await this.backend.flush();
        return { result: {} };
      case 'read':
        return { result: {}, payload: await array.read(Number(args.offset), Number(args.length)) };
      case 'fail-disk':
        return { result: await opFailDisk(this.assembled, { member: String(args.member), force: !!args.force }) };
      case 'add':
        return { result: await opAdd(this.assembled, { path: String(args.path), force: !!args.force }) };
      case 'remove':
        return { result: await opRemove(this.assembled, { member: String(args.member) }) };
      case 'rebuild':
        return { result: await opRebuild(this.assembled, { replacement: args.replacement as string | undefined, maxSpeed: args.maxSpeed as number | undefined, force: !!args.force }, context) };
      case 're-add':
        return { result: await opReAdd(this.assembled, { member: String(args.member), maxSpeed: args.maxSpeed as number | undefined }, context) };
      case 'scrub':
        return { result: await opScrub(this.assembled, { repair: !!args.repair, restart: !!args.restart, maxSpeed: args.maxSpeed as number | undefined }, context) };
      case 'recover':
        return { result: opRecover(this.assembled) };
      case 'stop':
        return { result: { stopping: true, pid: process.pid } };
      default:
        throw new JraidError('E_USAGE', `the daemon does not know the operation "${op}"`);
    }
  }

  /** Clean shutdown; idempotent. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log('info', `stopping (${reason}): draining in-flight requests`);
      this.control?.close();
      await this.nbd.close();
      await this.backend.drain();
      const { array } = this.assembled;
      try {
        await array.flush();
        await array.close();
        this.log('info', `array ${array.sb.name || this.uuid} closed cleanly (${array.state()})`);
      } finally {
        await this.assembled.release();
        for (const socket of this.connections) socket.end();
        await rm(this.controlSocket, { force: true });
        await removeRegistry(this.uuid);
        this.resolveDone();
      }
    })();
    return this.stopping;
  }
}

/**
 * A Unix socket can only be made in a directory that exists. libuv reports a missing one as
 * EACCES (a Windows compatibility mapping), which sends the user to check permissions: say
 * what is really wrong before listening.
 */
async function checkSocketDirectory(path: string, what: string): Promise<void> {
  const dir = dirname(resolve(path));
  const problem = await stat(dir).then(
    (found) => (found.isDirectory() ? undefined : `ENOTDIR: ${dir} is not a directory`),
    (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? `ENOENT: directory ${dir} does not exist` : undefined),
  );
  if (problem) throw new JraidError('E_DAEMON', `cannot listen for ${what}: ${problem}`, { path, hint: 'create the directory first, or choose another path' });
}

/** Removes a socket file nobody listens on (left by a daemon that died); refuses a live one. */
async function removeStaleSocket(path: string): Promise<void> {
  const exists = await stat(path).then((s) => s.isSocket() ? 'socket' : 'other', () => undefined);
  if (!exists) return;
  if (exists === 'other') throw new JraidError('E_DAEMON', `${path} exists and is not a socket`, { path, hint: 'remove it or choose another path' });
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new JraidError('E_DAEMON', `${path} is in use by another server`, { path, hint: 'stop it, or choose another path' });
  await rm(path, { force: true });
}
