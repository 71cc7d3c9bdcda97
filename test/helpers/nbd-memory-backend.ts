// A tiny NBD backend in memory for the NBD suites. It records every call, checks each against
// the export's bounds (a violation is recorded, not thrown, so a fuzz run can count them), and
// can hold calls at a gate to prove backpressure and draining.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdServer, type NbdBackend, type NbdEarlyAcknowledgement, type NbdLogLevel, type NbdServerOptions, type NbdWriteOptions } from '../../src/daemon/nbd-server.js';

export type BackendCall =
  | { op: 'read'; offsetBytes: number; lengthBytes: number }
  | { op: 'write'; offsetBytes: number; lengthBytes: number; fua: boolean }
  | { op: 'flush' }
  | { op: 'trim'; offsetBytes: number; lengthBytes: number }
  | { op: 'writeZeroes'; offsetBytes: number; lengthBytes: number; fua: boolean; noHole: boolean };

export class MemoryNbdBackend implements NbdBackend {
  readonly sizeBytes: number;
  readonly bytes: Buffer;
  readonly calls: BackendCall[] = [];
  readonly violations: string[] = [];
  flushes = 0;
  /** Calls currently inside the backend, and the most there ever were at once. */
  active = 0;
  activeMax = 0;
  /** When set, every call waits for this promise before doing its work. */
  gate: Promise<void> | undefined;
  /** When set, a call for which it returns an error fails with it. */
  failWith: ((call: BackendCall) => unknown) | undefined;
  /** When set, every call awaits it first (simulated device latency, to let requests overlap). */
  latency: ((call: BackendCall) => Promise<void>) | undefined;

  constructor(sizeBytes: number) {
    this.sizeBytes = sizeBytes;
    this.bytes = Buffer.alloc(sizeBytes);
  }

  /** Holds every later call until the returned function is called. */
  hold(): () => void {
    let open!: () => void;
    this.gate = new Promise((resolve) => {
      open = resolve;
    });
    return () => {
      this.gate = undefined;
      open();
    };
  }

  callsOf<Op extends BackendCall['op']>(op: Op): Extract<BackendCall, { op: Op }>[] {
    return this.calls.filter((call): call is Extract<BackendCall, { op: Op }> => call.op === op);
  }

  /** Fills the server's buffer, as a backend that reads into it does. */
  async read(offsetBytes: number, lengthBytes: number, target: Buffer): Promise<Buffer> {
    return this.run({ op: 'read', offsetBytes, lengthBytes }, () => {
      this.bytes.copy(target, 0, offsetBytes, offsetBytes + lengthBytes);
      return target;
    });
  }

  /** Copies the payload at once, so it never needs an early acknowledgement (a test may replace this with one that does). */
  async write(offsetBytes: number, data: Buffer, options: NbdWriteOptions): Promise<void | NbdEarlyAcknowledgement> {
    const copy = Buffer.from(data);
    return this.run({ op: 'write', offsetBytes, lengthBytes: data.length, fua: options.fua }, () => {
      copy.copy(this.bytes, offsetBytes);
    });
  }

  async flush(): Promise<void> {
    return this.run({ op: 'flush' }, () => {
      this.flushes++;
    });
  }

  async trim(offsetBytes: number, lengthBytes: number): Promise<void> {
    return this.run({ op: 'trim', offsetBytes, lengthBytes }, () => {});
  }

  async writeZeroes(offsetBytes: number, lengthBytes: number, options: { fua: boolean; noHole: boolean }): Promise<void> {
    return this.run({ op: 'writeZeroes', offsetBytes, lengthBytes, ...options }, () => {
      this.bytes.fill(0, offsetBytes, offsetBytes + lengthBytes);
    });
  }

  private async run<T>(call: BackendCall, work: () => T): Promise<T> {
    this.calls.push(call);
    this.checkRange(call);
    this.active++;
    this.activeMax = Math.max(this.activeMax, this.active);
    try {
      if (this.latency !== undefined) await this.latency(call);
      if (this.gate !== undefined) await this.gate;
      const failure = this.failWith?.(call);
      if (failure !== undefined) throw failure;
      return work();
    } finally {
      this.active--;
    }
  }

  private checkRange(call: BackendCall): void {
    if (call.op === 'flush') return;
    const { offsetBytes, lengthBytes } = call;
    const inside = Number.isSafeInteger(offsetBytes) && Number.isSafeInteger(lengthBytes) && offsetBytes >= 0 && lengthBytes > 0
      && offsetBytes + lengthBytes <= this.sizeBytes;
    if (!inside) this.violations.push(`${call.op} of ${lengthBytes} bytes at ${offsetBytes} outside ${this.sizeBytes}`);
  }
}

export interface MemoryNbdServer {
  server: NbdServer;
  backend: MemoryNbdBackend;
  socketPath: string;
  logs: { level: NbdLogLevel; message: string }[];
  /** Closes the server (if the test has not) and removes its directory. */
  cleanup(): Promise<void>;
}

/** A server on a fresh Unix socket, exporting a memory backend; logs are collected for assertions. */
export async function startMemoryNbdServer(options: { sizeBytes: number } & Omit<NbdServerOptions, 'backend' | 'logger'>): Promise<MemoryNbdServer> {
  const { sizeBytes, ...serverOptions } = options;
  const dir = mkdtempSync(join(tmpdir(), 'jraid-nbd-'));
  const socketPath = join(dir, 'nbd.sock');
  const backend = new MemoryNbdBackend(sizeBytes);
  const logs: MemoryNbdServer['logs'] = [];
  const server = new NbdServer({ ...serverOptions, backend, logger: (level, message) => logs.push({ level, message }) });
  await server.listen({ kind: 'unix', path: socketPath });
  return {
    server, backend, socketPath, logs,
    cleanup: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
