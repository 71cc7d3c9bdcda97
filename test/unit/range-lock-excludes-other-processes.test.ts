// Proves: the OFD range lock (seed 004's parity lock) is lock+read and write+unlock in one step,
// excludes another process over overlapping bytes only, makes a waiter wait until the holder's
// write+unlock, and is dropped by the kernel when its holder is SIGKILLed.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { OfdRangeLock } from '../../src/device/range-lock.js';
import type { BlockDevice } from '../../src/device/block-device.js';

const CHILD = resolve(import.meta.dirname, '../helpers/range-lock-child.mjs');
let dir: string;
let path: string;
let fd: number;
let children: ChildProcessWithoutNullStreams[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'jraid-range-lock-'));
  path = join(dir, 'member.img');
  writeFileSync(path, Buffer.alloc(1 << 20));
  fd = openSync(path, 'r+');
});

afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children = [];
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
});

function fileDevice(): BlockDevice {
  return {
    path, sizeBytes: 1 << 20,
    read: async (buf, offset) => { readSync(fd, buf, 0, buf.length, offset); },
    write: async (buf, offset) => { writeSync(fd, buf, 0, buf.length, offset); },
    flush: async () => {}, close: async () => {},
  };
}

/** A child process holding its own open file description of the member; ask() sends one command, resolves its answer. */
async function child(): Promise<{ ask(line: string): Promise<string>; process: ChildProcessWithoutNullStreams }> {
  const proc = spawn(process.execPath, [CHILD, path]);
  children.push(proc);
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let partial = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    for (let at = partial.indexOf('\n'); at >= 0; at = partial.indexOf('\n')) {
      const line = partial.slice(0, at);
      partial = partial.slice(at + 1);
      const next = waiting.shift();
      if (next) next(line); else lines.push(line);
    }
  });
  const nextLine = () => new Promise<string>((done) => { const line = lines.shift(); if (line !== undefined) done(line); else waiting.push(done); });
  expect(await nextLine()).toBe('ready');
  return { process: proc, ask: (line) => { proc.stdin.write(`${line}\n`); return nextLine(); } };
}

it('lock+read holds the bytes against another process until write+unlock, and ranges apart do not conflict', async () => {
  const lock = new OfdRangeLock(fd, path);
  const other = await child();
  const device = fileDevice();
  writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 65536);

  const parity = Buffer.alloc(4096);
  await lock.lockRead(device, parity, 65536);
  expect(parity[0]).toBe(0x5a);
  expect(await other.ask('try 65536 4096')).toBe('busy');
  expect(await other.ask('try 69631 1')).toBe('busy'); // any overlap: its last byte
  expect(await other.ask('try 61440 4096')).toBe('free'); // the block before
  expect(await other.ask('try 69632 4096')).toBe('free'); // right after it

  parity.fill(0xa5);
  await lock.writeUnlock(device, parity, 65536);
  expect(await other.ask('try 65536 4096')).toBe('free');
  expect(await other.ask('lockread 65536 4096')).toBe(`held ${'a5'.repeat(8)}`);
  expect(lock.tryLock({ offsetBytes: 65536, lengthBytes: 4096 })).toBe(false);
});

it('a waiter waits for the holder in another process and reads what it wrote', async () => {
  const holder = await child();
  expect(await holder.ask('lockread 8192 4096')).toBe(`held ${'00'.repeat(8)}`);
  const lock = new OfdRangeLock(fd, path);
  const started = performance.now();
  const buf = Buffer.alloc(4096);
  const waiting = lock.lockRead(fileDevice(), buf, 8192);
  await new Promise((done) => setTimeout(done, 300));
  expect(await holder.ask('writeunlock 8192 4096 119')).toBe('released');
  await waiting;
  expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  expect(buf.every((byte) => byte === 119)).toBe(true);
  expect(lock.stats.contended).toBe(1);
  expect(lock.stats.waitMs).toBeGreaterThanOrEqual(290);
  lock.unlock({ offsetBytes: 8192, lengthBytes: 4096 });
});

it('the lock is released when its holder is SIGKILLed', async () => {
  const holder = await child();
  expect(await holder.ask('lockread 0 65536')).toMatch(/^held /);
  const lock = new OfdRangeLock(fd, path, { timeoutMs: 10_000 });
  expect(lock.tryLock({ offsetBytes: 4096, lengthBytes: 4096 })).toBe(false);
  const waiting = lock.lock({ offsetBytes: 4096, lengthBytes: 4096 });
  holder.process.kill('SIGKILL');
  await waiting;
  expect(lock.stats.contended).toBe(1);
  lock.unlock({ offsetBytes: 4096, lengthBytes: 4096 });
});

it('a waiter gives up with EIO after its timeout while a live holder keeps the lock', async () => {
  const holder = await child();
  expect(await holder.ask('lockread 0 4096')).toMatch(/^held /);
  const lock = new OfdRangeLock(fd, path, { timeoutMs: 200 });
  await expect(lock.lock({ offsetBytes: 0, lengthBytes: 4096 })).rejects.toThrow(/EIO.*not free within 200 ms/);
});
