// The daemon: one per array (the member lock enforces it). It assembles the array (running
// recovery when needed), exports it over NBD, answers the CLI on a control socket (mode 0600),
// and stops cleanly on SIGTERM, SIGINT or `jraid stop`: no new requests, in-flight ones
// drained, everything flushed, a clean journal record, members closed.

import { chmod, realpath, rm, stat } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Assembled } from '../engine/assemble.js';
import { openArray, type ArraySpec } from '../app/open.js';
import { setMemberIoMode } from '../device/file-device.js';
import { lostMemberNames, opAdd, opDetail, opFailDisk, opReAdd, opRebuild, opRecover, opRemove, opScrub, type OpContext, type ScrubResult } from '../app/operations.js';
import type { ArrayEvent } from '../engine/raid-array.js';
import type { DaemonCounters } from './array-status.js';
import { recordScrub } from './scrub-record.js';
import { EVENT_SUBSCRIBERS_MAX, EventHub, rebuildSteps } from './monitor-events.js';
import { SpareTakeover } from './spare-takeover.js';
import { IoStats } from './io-stats.js';
import { opReplace } from '../app/replace.js';
import { JraidError, isJraidError } from '../errors.js';
import { formatUuid } from '../format/uuid.js';
import { readConfig } from '../app/config.js';
import { STRIPES_IN_FLIGHT_MAX } from '../engine/raid-array.js';
import { STRIPE_LOCK_WAITERS_MAX } from '../engine/stripe-lock.js';
import { assert } from '../units.js';
import { ArrayBackend, FAST_WRITES_PENDING_MAX, type Toughness } from './array-backend.js';
import { BoundedCount } from './bounded-count.js';
import { FrameReader, writeFrame, type ControlFrame } from './control-protocol.js';
import { NbdServer, type NbdAddress, type NbdLimits } from './nbd-server.js';
import { daemonKey, ensureRunDir, removeOwnRegistry, writeRegistry, type DaemonRecord } from './registry.js';
import { ClusterNode } from './cluster.js';
import type { RaidArray } from '../engine/raid-array.js';
import { Fence, readLease, removeOwnLease } from './fence.js';
import { readStandby, removeStandby, type Takeover } from './standby.js';
import { performance } from 'node:perf_hooks';
import { underlyingFile } from '../device/open-member.js';
import { tryLockMember, unlockMember } from '../device/lock.js';

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
  /** Set when a standby takes the array over (standby.ts): recovery, an events bump that fences the old primary, its addresses. */
  takeover?: Takeover;
  /** Cluster mode (cluster.ts): serve as node `node`, beside the other nodes on the same members. */
  cluster?: { node: number };
}

/** `context` whose members-changed step (the new members are in place, before a rebuild's copy) also settles a cluster change. */
function settling(context: OpContext, settle: () => Promise<void>): OpContext {
  return { ...context, onMembersChanged: async (members) => { await context.onMembersChanged?.(members); await settle(); } };
}

/** Test hook, the negative control of the cluster proofs: nodes write without parity locks. Never set it in use. */
export const UNSAFE_NO_PARITY_LOCK_ENV = 'JRAID_TEST_UNSAFE_NO_PARITY_LOCK';

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
  /** The write fence and lease (fence.ts); `fencedReason` is set once another daemon took over. */
  fence!: Fence;
  fencedReason: string | undefined;
  takeover: DaemonRecord['takeover'];
  /** Write errors and scrub checksum mismatches per member uuid, since this daemon started (jraid status). */
  readonly counters: DaemonCounters = { writeErrors: {}, checksumErrors: {} };
  /** mdadm-named events: logged, kept, streamed to jraid monitor. */
  readonly events: EventHub;
  private readonly spareTakeover: SpareTakeover;
  private readonly ioStats: IoStats;
  private readonly arrayName: string;
  /** Cluster mode: this node (its node lock, and the watch for dead nodes' journal areas). */
  cluster: ClusterNode | undefined;

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
    this.arrayName = assembled.array.sb.name || this.uuid;
    this.events = new EventHub((event) => this.log(event.event === 'Fail' || event.event === 'FailSpare' ? 'error' : 'info', `event ${event.event} ${event.array}${event.member ? ` ${event.member}` : ''}: ${event.message}`));
    this.spareTakeover = new SpareTakeover(assembled, this.log, this.events, this.arrayName, this.uuid);
    this.ioStats = new IoStats(assembled.array);
  }

  static async start(options: DaemonOptions): Promise<Daemon> {
    // Members reached through a worker thread each (device/member-ring.ts), not libuv's pool.
    setMemberIoMode('ring');
    let started: Daemon | undefined;
    const fence = new Fence((reason) => started?.fenced(reason));
    const takeover = options.takeover;
    let cluster: ClusterNode | undefined;
    // Events arrive from the engine before the daemon object exists (recovery at assembly): queued to it.
    let daemonRef: Daemon | undefined;
    const assembled = await openArray(options.spec, options.configFile, {
      wrapDevice: fence.wrap,
      // A paused primary still holds the lock: the lease claim (standby.ts) stands in for it.
      ...(takeover?.paused ? { lock: 'none' as const } : {}),
      journal: { idleCleanMs: options.idleCleanMs },
      ...(options.cluster ? {
        cluster: {
          node: options.cluster.node,
          beforeRecovery: async (array: RaidArray) => {
            cluster = new ClusterNode(array, options.cluster!.node, options.logger, async () => {
              const config = await readConfig(options.configFile);
              const uuid = formatUuid(array.sb.arrayUuid);
              return config.arrays.find((entry) => entry.uuid === uuid || (!entry.uuid && entry.name === array.sb.name))?.devices ?? [];
            });
            await cluster.takeNodeLock();
            cluster.shareCommits();
            // Members another node brought in that the config entry does not list yet: found, not taken for absent.
            await cluster.bringInMembers();
            if (process.env[UNSAFE_NO_PARITY_LOCK_ENV] === '1') {
              array.parityLocks = undefined;
              options.logger('error', `${UNSAFE_NO_PARITY_LOCK_ENV}=1: this node writes WITHOUT parity locks (a test's negative control); parity WILL go wrong`);
            }
          },
        },
      } : {}),
      onEvent: (event) => {
        if (event.kind === 'member-failed') options.logger('error', `member ${event.path} (role ${event.role ?? '-'}) failed: ${event.reason}; the array runs degraded`);
        else if (event.kind === 'read-error-corrected') options.logger('warn', `read error on ${event.path} at member data byte ${event.memberDataOffsetBytes}: rebuilt from parity and rewritten`);
        daemonRef?.onArrayEvent(event);
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
    const key = daemonKey(formatUuid(array.sb.arrayUuid), options.cluster?.node);
    const controlSocket = options.controlSocket ?? join(dir, `${key}.sock`);
    const daemon = new Daemon(assembled, options, controlSocket);
    daemon.fence = fence;
    daemon.cluster = cluster;
    daemon.spareTakeover.cluster = cluster;
    started = daemon;
    daemonRef = daemon;
    try {
      if (takeover) {
        // Two commits put the events past any commit the old primary may have had in flight,
        // so its next commit-path check sees a newer superblock and it stops (fence.ts).
        const before = array.sb.events;
        await array.commitSuperblocks(() => {});
        await array.commitSuperblocks(() => {});
        options.logger('info', `takeover: superblock events ${before} -> ${array.sb.events} fence the previous primary${takeover.previousPid !== null ? ` (pid ${takeover.previousPid})` : ''}`);
      }
      // A cluster node has no standby, so no lease: other nodes' superblock commits are normal (cluster.ts).
      if (!cluster) {
        const dataRegion = array.sb.regions.find((region) => region.kind === 'data');
        fence.watchEvents(() => array.sb.events, dataRegion?.offsetBytes ?? 0);
        await fence.startLease(daemon.uuid);
      }
      const pendingNbd: string[] = [];
      const addresses = options.nbd.length > 0 ? options.nbd : [{ kind: 'unix' as const, path: join(dir, cluster ? `${name}.node${cluster.node}.nbd` : `${name}.nbd`) }];
      for (const address of addresses) {
        if (address.kind === 'unix') {
          await checkSocketDirectory(address.path, `NBD on unix:${address.path}`);
          // A paused primary's socket still accepts (into its backlog): it is fenced, the path is ours.
          if (takeover?.paused) await rm(address.path, { force: true });
          else await removeStaleSocket(address.path);
        }
        if (takeover?.paused && address.kind === 'tcp') {
          pendingNbd.push(describeNbdAddress(address));
          void daemon.listenWhenFree(address);
          continue;
        }
        const bound = await daemon.nbd.listen(address);
        options.logger('info', `serving NBD on ${describeNbdAddress(bound)}`);
      }
      if (takeover?.paused) await rm(controlSocket, { force: true });
      await daemon.listenControl();
      if (takeover) daemon.takeover = { previousPid: takeover.previousPid, paused: takeover.paused, takeoverMs: Math.round(performance.now() - takeover.detectedAtMs) };
      await writeRegistry({
        uuid: daemon.uuid, name, pid: process.pid, controlSocket, nbd: [...daemon.nbd.addresses.map(describeNbdAddress), ...pendingNbd],
        log: options.logFile, toughness: options.toughness, startedAt: new Date().toISOString(),
        members: await Promise.all(assembled.spec.paths.map((path) => realpath(path).catch(() => path))), takeover: daemon.takeover,
        ...(cluster ? { node: cluster.node } : {}),
      });
      if (cluster) {
        cluster.start();
        options.logger('info', `cluster: serving as node ${cluster.node} of ${cluster.nodes}${array.parityLocks ? '' : ' WITHOUT parity locks'}`);
      }
      if (takeover?.paused) daemon.adoptLockWhenFree();
      if (takeover) {
        await removeStandby(daemon.uuid, process.pid);
        options.logger('info', `takeover: serving ${daemon.takeover!.takeoverMs} ms after the primary${takeover.previousPid !== null ? ` (pid ${takeover.previousPid})` : ''} was found ${takeover.paused ? 'paused' : 'gone'}`);
      }
      options.logger('info', `array ${name}: ${array.state()}, ${array.sizeBytes} bytes, toughness ${options.toughness}, control socket ${controlSocket}`);
      daemon.events.emit({ event: 'NewArray', array: name, uuid: daemon.uuid, member: null, message: `serving ${name} (${array.state()})` });
      if (array.degradedRoles().length > 0) daemon.announceDegraded();
    } catch (error) {
      await daemon.stop('start failed').catch(() => {});
      throw error;
    }
    return daemon;
  }

  /** jraid monitor: every event from now on, as {id, event} frames, until the connection closes. */
  private streamEvents(socket: Socket, id: unknown): void {
    const unsubscribe = this.events.subscribe((event) => {
      if (!socket.destroyed) void writeFrame(socket, { id, event }).catch(() => {});
    });
    if (!unsubscribe) {
      void writeFrame(socket, { id, ok: false, error: { code: 'E_DAEMON', message: `the daemon already streams events to ${EVENT_SUBSCRIBERS_MAX} monitors`, hint: 'stop a monitor, or use jraid status' } }).catch(() => {});
      return;
    }
    // The subscription is live: say so, so a monitor knows no event from here on is missed.
    void writeFrame(socket, { id, subscribed: true }).catch(() => {});
    socket.once('close', unsubscribe);
  }

  /** Engine events: counted for jraid status, reported as monitor events, and a spare takes over. */
  onArrayEvent(event: ArrayEvent): void {
    if (event.kind !== 'member-failed') return;
    if (/write error/.test(event.reason)) {
      const uuid = this.memberUuidByPath(event.path);
      if (uuid) this.counters.writeErrors[uuid] = (this.counters.writeErrors[uuid] ?? 0) + 1;
    }
    const member = event.path === '(missing)' ? null : resolve(event.path);
    this.events.emit({ event: 'Fail', array: this.arrayName, uuid: this.uuid, member, message: `${member ?? 'a missing member'} (role ${event.role ?? '-'}) failed: ${event.reason}` });
    this.announceDegraded();
    // In a cluster the node that takes the takeover lock rebuilds; the others follow (spare-takeover.ts).
    this.spareTakeover.memberFailed();
  }

  private announceDegraded(): void {
    const { array } = this.assembled;
    const lost = array.lostRoles();
    if (lost.length === 0) return;
    this.events.emit({ event: 'DegradedArray', array: this.arrayName, uuid: this.uuid, member: null, message: `${this.arrayName} is ${array.state()}: role ${lost.join(', ')} lost` });
  }

  /** Explicit rebuilds are reported as the automatic ones are. */
  private reportingRebuild(context: OpContext, what: string): OpContext {
    let lastPercent = 0;
    this.events.emit({ event: 'RebuildStarted', array: this.arrayName, uuid: this.uuid, member: null, message: `${what} started` });
    return {
      ...context,
      onProgress: (progress) => {
        context.onProgress?.(progress);
        const percent = progress.totalBytes > 0 ? (100 * progress.doneBytes) / progress.totalBytes : 0;
        for (const step of rebuildSteps(lastPercent, percent)) this.events.emit({ event: `Rebuild${step}`, array: this.arrayName, uuid: this.uuid, member: null, percent: step, message: `${what} ${step}% done` });
        lastPercent = percent;
      },
    };
  }

  private memberUuidByPath(path: string): string | undefined {
    const { array } = this.assembled;
    for (const [index, disk] of array.disks) if (disk.path === path) return formatUuid(array.sb.members[index]!.uuid);
    return undefined;
  }

  private countScrub(result: ScrubResult): void {
    const { array } = this.assembled;
    for (const mismatch of result.mismatches) {
      if (mismatch.role === null) continue;
      const index = array.memberIndexForRole(mismatch.role);
      if (index < 0) continue;
      const uuid = formatUuid(array.sb.members[index]!.uuid);
      this.counters.checksumErrors[uuid] = (this.counters.checksumErrors[uuid] ?? 0) + mismatch.blocks;
    }
  }

  get addresses(): string[] {
    return this.nbd.addresses.map(describeNbdAddress);
  }

  /** Another daemon took the array over: write nothing more (the fence fails every member write), and end. */
  private fenced(reason: string): void {
    this.fencedReason = reason;
    this.log('error', `fenced: ${reason}; this daemon stops writing, fails its pending requests with EIO, and exits`);
    // Its sockets and run-directory files are the new primary's now: they are left alone.
    setTimeout(() => this.resolveDone(), 200).unref();
  }

  /** A paused primary keeps its TCP ports until it resumes and sees the fence: listen once it lets go. */
  private async listenWhenFree(address: NbdAddress): Promise<void> {
    for (let logged = false; !this.stopping && !this.fencedReason;) {
      try {
        const bound = await this.nbd.listen(address);
        this.log('info', `serving NBD on ${describeNbdAddress(bound)}`);
        return;
      } catch (error) {
        if (!logged) this.log('warn', `takeover: NBD ${describeNbdAddress(address)} is still held by the paused primary (${(error as Error).message}); retrying until it exits`);
        logged = true;
        await new Promise((done) => setTimeout(done, 100));
      }
    }
  }

  /**
   * Served without the lock (the paused primary held it): take it as soon as that process lets
   * go, so that no other daemon or writer can open the array. The member devices' own locks;
   * the fds close with the array, which drops them.
   */
  private adoptLockWhenFree(): void {
    const fds = [...this.assembled.array.disks.values()].map((disk) => underlyingFile(disk.device)?.fd).filter((fd): fd is number => fd !== undefined);
    const timer = setInterval(() => {
      if (this.stopping || this.fencedReason) return clearInterval(timer);
      const held: number[] = [];
      for (const fd of fds) {
        if (!tryLockMember(fd, 'exclusive')) break;
        held.push(fd);
      }
      if (held.length < fds.length) {
        for (const fd of held) unlockMember(fd);
        return;
      }
      clearInterval(timer);
      this.log('info', 'takeover: the array lock is this daemon\'s now (the paused primary has exited)');
    }, 200);
    timer.unref();
  }

  /** What `detail` shows of the daemons: this one, its standby, and how it took over. */
  private async daemonsDetail(): Promise<Record<string, unknown>> {
    const standby = await readStandby(this.uuid);
    return {
      standby: standby ? { pid: standby.pid, since: standby.since } : null,
      takeover: this.takeover ?? null,
      cluster: this.cluster ? { node: this.cluster.node, nodes: await this.cluster.describe() } : null,
    };
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
    if (op === 'monitor') {
      this.streamEvents(socket, id);
      return;
    }
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
            cluster: this.cluster ? { node: this.cluster.node, parityLocks: array.parityLocks?.stats() ?? null, ...this.cluster.stats } : null,
          },
        };
      case 'detail':
        return { result: { ...opDetail(this.assembled), daemon: { pid: process.pid, nbd: this.addresses, toughness: this.backend.toughness, controlSocket: this.controlSocket, ...await this.daemonsDetail() }, counters: this.counters } };
      case 'write':
        await array.write(Number(args.offset), payload);
        return { result: { bytesWritten: payload.length } };
      case 'flush':
        await this.backend.flush();
        return { result: {} };
      case 'read':
        return { result: {}, payload: await array.read(Number(args.offset), Number(args.length)) };
      case 'fail-disk':
        // In a cluster, failMember returns once every running node has followed (cluster.ts): none writes to the member any more.
        return { result: await opFailDisk(this.assembled, { member: String(args.member), force: !!args.force }) };
      case 'add':
        return { result: await this.clusterChange('add', () => opAdd(this.assembled, { path: String(args.path), force: !!args.force })) };
      case 'remove':
        return { result: await this.clusterChange('remove', async (settle) => {
          const result = await opRemove(this.assembled, { member: String(args.member) });
          await settle(result.removed.flatMap((member) => member.path ? [member.path] : []));
          return result;
        }) };
      case 'rebuild': return this.clusterChange('rebuild', async (settle) => {
        await this.spareTakeover.idle();
        const result = await opRebuild(this.assembled, { replacement: args.replacement as string | undefined, maxSpeed: args.maxSpeed as number | undefined, force: !!args.force }, this.reportingRebuild(settling(context, settle), 'rebuild'));
        for (const outcome of result.rebuilt) this.events.emit({ event: 'RebuildFinished', array: this.arrayName, uuid: this.uuid, member: resolve(outcome.path), message: `rebuild of role ${outcome.role} onto ${resolve(outcome.path)} finished` });
        return { result };
      });
      case 're-add': return this.clusterChange('re-add', async (settle) => {
        await this.spareTakeover.idle();
        const result = await opReAdd(this.assembled, { member: String(args.member), maxSpeed: args.maxSpeed as number | undefined }, this.reportingRebuild(settling(context, settle), `re-add of ${args.member}`));
        this.events.emit({ event: 'RebuildFinished', array: this.arrayName, uuid: this.uuid, member: resolve(result.path), message: `re-add of ${resolve(result.path)} finished (${result.mode})` });
        return { result };
      });
      case 'replace': return (this.cluster ? <T>(fn: () => Promise<T>) => this.cluster!.alone('replace', fn) : <T>(fn: () => Promise<T>) => fn())(async () => {
        await this.spareTakeover.idle();
        const result = await opReplace(this.assembled, { old: String(args.old), with: String(args.with), maxSpeed: args.maxSpeed as number | undefined, force: !!args.force }, this.reportingRebuild(context, `replace of ${args.old}`));
        this.events.emit({ event: 'RebuildFinished', array: this.arrayName, uuid: this.uuid, member: result.new.path, message: `${result.new.path} replaced ${result.old.path} in role ${result.role}` });
        return { result };
      });
      case 'iostat':
        return { result: this.ioStats.sample() };
      case 'events':
        return { result: { events: this.events.past } };
      case 'scrub': {
        const result = await opScrub(this.assembled, { repair: !!args.repair, restart: !!args.restart, maxSpeed: args.maxSpeed as number | undefined }, context);
        this.countScrub(result);
        this.events.emit({ event: 'ScrubFinished', array: this.arrayName, uuid: this.uuid, member: null, mismatches: result.mismatchCount, message: `scrub${result.repaired ? ' --repair' : ''} finished: ${result.mismatchCount} mismatched stripe(s)` });
        await recordScrub(this.uuid, result).catch((error: Error) => this.log('warn', `the last scrub's result was not saved: ${error.message}`));
        return { result };
      }
      case 'recover':
        return { result: opRecover(this.assembled) };
      case 'stop':
        return { result: { stopping: true, pid: process.pid } };
      default:
        throw new JraidError('E_USAGE', `the daemon does not know the operation "${op}"`);
    }
  }

  /**
   * Membership changes that bring a member in or out: in a cluster with every node running
   * (cluster.ts, change): writes pause until every node follows; `settle` ends the pause once the
   * members are in place (before a rebuild's copy).
   */
  private clusterChange<T>(what: string, fn: (settle: (removedPaths?: string[]) => Promise<void>) => Promise<T>): Promise<T> {
    return this.cluster ? this.cluster.change(what, fn) : fn(async () => {});
  }

  /** Clean shutdown; idempotent. */
  stop(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      if (this.fencedReason) return this.resolveDone(); // nothing here is this daemon's any more
      this.log('info', `stopping (${reason}): draining in-flight requests`);
      this.spareTakeover.stop();
      await this.cluster?.stop();
      this.events.emit({ event: 'DeviceDisappeared', array: this.arrayName, uuid: this.uuid, member: null, message: `the daemon stops serving ${this.arrayName} (${reason})` });
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
        this.fence.stopLease();
        // A standby may already serve (it claimed the lease): its files stay.
        const leaseHolder = this.cluster ? undefined : (await readLease(this.uuid))?.record.pid;
        if (this.cluster) {
          await rm(this.controlSocket, { force: true });
          await removeOwnRegistry(this.uuid, process.pid, this.cluster.node);
        } else if (leaseHolder === undefined || leaseHolder === process.pid) {
          await rm(this.controlSocket, { force: true });
          await removeOwnRegistry(this.uuid, process.pid);
          await removeOwnLease(this.uuid, process.pid);
        }
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
