// The CLI's side of the control socket: find the daemon serving an array, send it requests.

import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { FileDevice } from '../device/file-device.js';
import { JraidError, type ErrorCode } from '../errors.js';
import { formatUuid } from '../format/uuid.js';
import { checkExpectedUuid } from '../engine/assemble.js';
import { resolveArraySpec, type ArraySpec } from '../app/open.js';
import { readSuperblocks } from '../engine/superblock-io.js';
import { FrameReader, writeFrame, type ControlFrame } from './control-protocol.js';
import { readRegistry, type DaemonRecord } from './registry.js';

/** How often a waiting call looks whether the daemon is stopped (SIGSTOP, a debugger). */
const STOPPED_CHECK_INTERVAL_MS = 500;
/** A daemon stopped this long while a call waits fails the call: it cannot answer until resumed. */
export const STOPPED_DAEMON_GIVE_UP_MS = 5_000;

/** Whether process `pid` is stopped (job control or ptrace), from /proc; false when unknown. */
export function processStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) S ...": comm may hold spaces and parentheses, so the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'T' || state === 't';
  } catch {
    return false;
  }
}

export class DaemonClient {
  readonly record: DaemonRecord;
  private readonly socket: Socket;
  private readonly reader = new FrameReader();
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (frame: ControlFrame) => void; reject: (error: unknown) => void; onProgress?: (progress: { doneBytes: number; totalBytes: number }) => void; onMembers?: (memberPaths: string[]) => void; onEvent?: (header: Record<string, unknown>) => void }>();

  private constructor(socket: Socket, record: DaemonRecord) {
    this.socket = socket;
    this.record = record;
    socket.on('data', (chunk: Buffer) => {
      let frames: ControlFrame[];
      try {
        frames = this.reader.push(chunk);
      } catch (error) {
        this.failAll(error);
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        const waiter = this.pending.get(frame.header.id as number);
        if (!waiter) continue;
        if (frame.header.progress) {
          waiter.onProgress?.(frame.header.progress as { doneBytes: number; totalBytes: number });
          continue;
        }
        if (frame.header.members) {
          waiter.onMembers?.(frame.header.members as string[]);
          continue;
        }
        if (frame.header.event || frame.header.subscribed) {
          waiter.onEvent?.(frame.header);
          continue;
        }
        this.pending.delete(frame.header.id as number);
        waiter.resolve(frame);
      }
    });
    const lost = () => this.failAll(this.connectionLost());
    socket.on('close', lost);
    socket.on('error', lost);
  }

  private stoppedWatch: NodeJS.Timeout | undefined;
  private stoppedSinceMs: number | undefined;

  /**
   * While a call waits, look whether the daemon is stopped: a stopped process's control socket
   * still accepts, and without this the CLI would wait forever.
   */
  private watchForStoppedDaemon(): void {
    if (this.stoppedWatch) return;
    this.stoppedWatch = setInterval(() => {
      if (this.pending.size === 0) {
        clearInterval(this.stoppedWatch);
        this.stoppedWatch = undefined;
        this.stoppedSinceMs = undefined;
        return;
      }
      if (!processStopped(this.record.pid)) {
        this.stoppedSinceMs = undefined;
        return;
      }
      this.stoppedSinceMs ??= Date.now();
      if (Date.now() - this.stoppedSinceMs < STOPPED_DAEMON_GIVE_UP_MS) return;
      this.failAll(new JraidError('E_DAEMON', `the daemon serving this array (pid ${this.record.pid}) is stopped (SIGSTOP or a debugger) and cannot answer`, {
        hint: `resume it (kill -CONT ${this.record.pid}) and retry, or end it (kill ${this.record.pid}; kill -CONT ${this.record.pid})`,
      }));
      this.socket.destroy();
    }, STOPPED_CHECK_INTERVAL_MS);
    this.stoppedWatch.unref();
  }

  static connect(record: DaemonRecord): Promise<DaemonClient | undefined> {
    return new Promise((resolve) => {
      const socket = connect(record.controlSocket);
      socket.once('connect', () => resolve(new DaemonClient(socket, record)));
      socket.once('error', () => resolve(undefined));
    });
  }

  /** The daemon dropped us before answering: typically it is out of file descriptors. */
  private connectionLost(): JraidError {
    return new JraidError('E_DAEMON', `the daemon serving this array (pid ${this.record.pid}) closed the control connection before answering (out of file descriptors, or stopping?)`, {
      hint: `see its log${this.record.log ? ` (${this.record.log})` : ''}; jraid stop, or retry`,
    });
  }

  private failAll(error: unknown): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /** `onMembers`: the daemon reports that the members changed while the operation runs (a replacement joined). */
  async call<T>(op: string, args: Record<string, unknown> = {}, payload?: Buffer, onProgress?: (progress: { doneBytes: number; totalBytes: number }) => void, onMembers?: (memberPaths: string[]) => void): Promise<{ result: T; payload: Buffer }> {
    const id = this.nextId++;
    const answer = new Promise<ControlFrame>((resolve, reject) => this.pending.set(id, { resolve, reject, onProgress, onMembers }));
    this.watchForStoppedDaemon();
    answer.catch(() => {}); // awaited below; a rejection before then is not an unhandled one
    try {
      await writeFrame(this.socket, { id, op, args }, payload);
    } catch {
      // A socket the daemon has already closed (EPIPE, "ended by the other party") is the same news.
      this.pending.delete(id);
      throw this.connectionLost();
    }
    const frame = await answer;
    if (!frame.header.ok) {
      const error = frame.header.error as { code: ErrorCode; message: string; path?: string; hint?: string; details?: Record<string, unknown> };
      throw new JraidError(error.code, error.message, { path: error.path, hint: error.hint, details: error.details });
    }
    return { result: frame.header.result as T, payload: frame.payload };
  }

  /**
   * A streaming request (monitor): `onFrame` gets each {event} or {subscribed} header; resolves
   * when the daemon closes the connection (it stopped), rejects on a refusal.
   */
  stream(op: string, args: Record<string, unknown>, onFrame: (header: Record<string, unknown>) => void): Promise<void> {
    const id = this.nextId++;
    const finished = new Promise<void>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (frame) => {
          if (frame.header.ok) return resolve();
          const error = frame.header.error as { code: ErrorCode; message: string; path?: string; hint?: string };
          reject(new JraidError(error.code, error.message, { path: error.path, hint: error.hint }));
        },
        reject: () => resolve(), // the connection closed: the daemon went away
        onEvent: onFrame,
      });
    });
    writeFrame(this.socket, { id, op, args }).catch(() => {});
    return finished;
  }

  close(): void {
    this.socket.end();
  }
}

/** The daemon serving the array `spec` names, or undefined when none runs. */
/** `node`: a cluster array's node N (default: the live node with the lowest id). */
export async function findDaemon(spec: string, configFile: string, node?: number): Promise<DaemonClient | undefined> {
  let resolved: ArraySpec;
  try {
    resolved = await resolveArraySpec(spec, configFile);
  } catch {
    return undefined;
  }
  for (const path of resolved.paths) {
    let device: FileDevice | undefined;
    let arrayUuid: Buffer | undefined;
    try {
      device = await FileDevice.open(path, { readOnly: true });
      arrayUuid = (await readSuperblocks(device)).superblock?.arrayUuid;
    } catch {
      continue;
    } finally {
      await device?.close();
    }
    if (!arrayUuid) continue;
    // A config line naming another array's uuid is refused here too, not served by whichever daemon its members have.
    checkExpectedUuid(resolved.expectedUuid, arrayUuid);
    const record = await readRegistry(formatUuid(arrayUuid), node);
    return record ? await DaemonClient.connect(record) : undefined;
  }
  return undefined;
}
