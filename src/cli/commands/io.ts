// `write` and `read`: bytes in and out of an array at any offset, for scripts.

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { withArray } from '../../app/open.js';
import type { AssembleOptions } from '../../engine/assemble.js';
import type { ArrayEvent, RaidArray } from '../../engine/raid-array.js';
import { daemonFor } from '../route.js';
import { JraidError } from '../../errors.js';
import { exitCodeForState } from '../../app/result-status.js';
import type { ArrayState } from '../../engine/raid-array.js';
import { lostMemberNames } from '../../app/operations.js';
import type { Output } from '../output.js';
import { MIB } from '../../units.js';
import { bytesArg, configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';

/** Bytes moved per engine call: bounds memory whatever the transfer size. */
const TRANSFER_CHUNK_BYTES = 8 * MIB;

interface WriteCliOptions extends CommonOptions {
  offset: number;
  input?: string;
}

interface ReadCliOptions extends CommonOptions {
  offset: number;
  length: number;
  output?: string;
}

export function registerIo(program: Command, run: Run): void {
  withCommonOptions(program.command('write')
    .description('write bytes from a file or stdin into the array; durable before it exits')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .requiredOption('-o, --offset <bytes>', 'array byte offset (suffixes K, M, G, T)', bytesArg)
    .option('-i, --input <file>', 'read from FILE; "-" or absent: stdin'))
    .action((spec: string, options: WriteCliOptions) => run(writeCommand(spec, options)));
  withCommonOptions(program.command('read')
    .description('read a byte range of the array to a file or stdout')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .requiredOption('-o, --offset <bytes>', 'array byte offset (suffixes K, M, G, T)', bytesArg)
    .requiredOption('-l, --length <bytes>', 'bytes to read (suffixes K, M, G, T)', bytesArg)
    .option('--output <file>', 'write to FILE; "-" or absent: stdout'))
    .action((spec: string, options: ReadCliOptions) => run(readCommand(spec, options)));
}

/** The array as write and read use it: directly, or through the daemon that serves it. */
interface ByteTarget {
  sizeBytes: number;
  write(offsetBytes: number, data: Buffer): Promise<void>;
  read(offsetBytes: number, lengthBytes: number): Promise<Buffer>;
  flush(): Promise<void>;
}

/** The array's health once the command is done (after the clean shutdown when run directly), and its lost members. */
interface FinalState {
  health: ArrayState;
  lostMembers: string[];
}

async function withTarget<T>(spec: string, options: CommonOptions, open: AssembleOptions, out: Output, fn: (target: ByteTarget) => Promise<T>): Promise<{ value: T; final: FinalState }> {
  const daemon = await daemonFor(spec, options);
  if (daemon) {
    try {
      const status = async () => (await daemon.call<{ sizeBytes: number; health: ArrayState; lostMembers?: string[] }>('status')).result;
      const value = await fn({
        sizeBytes: (await status()).sizeBytes,
        write: async (offset, data) => { await daemon.call('write', { offset }, data); },
        read: async (offset, length) => (await daemon.call('read', { offset, length })).payload,
        flush: async () => { await daemon.call('flush'); },
      });
      const { health, lostMembers } = await status();
      return { value, final: { health, lostMembers: lostMembers ?? [] } };
    } finally {
      daemon.close();
    }
  }
  let opened: RaidArray | undefined;
  const onEvent = (event: ArrayEvent) => {
    if (event.kind === 'member-failed') out.warn(`member ${event.path} (role ${event.role ?? '-'}) failed: ${event.reason}; the array runs degraded`);
    open.onEvent?.(event);
  };
  const value = await withArray(spec, configFor(options), { ...open, onEvent }, ({ array, report }) => {
    opened = array;
    // Notes from assembly (a damaged superblock copy, recovery run) go to the person at the terminal.
    for (const note of report.notes) out.info(note);
    return fn({
      sizeBytes: array.sizeBytes,
      write: (offset, data) => array.write(offset, data),
      read: (offset, length) => array.read(offset, length),
      flush: () => array.flush(),
    });
  });
  // Read after the clean shutdown: a member may fail while the closing record is written.
  return { value, final: { health: opened!.health(), lostMembers: lostMemberNames(opened!) } };
}

/**
 * Input from a pipe (stdin, a FIFO, /dev/stdin) is held in memory, at most `limitBytes`, so an
 * oversized write is refused before anything is written. A regular file returns undefined: its
 * size is checked here and the caller reads it in chunks.
 */
async function readInput(path: string | undefined, limitBytes: number): Promise<Buffer | undefined> {
  if (path === undefined || path === '-') {
    if (process.stdin.isTTY) throw new JraidError('E_USAGE', 'no input: stdin is a terminal', { hint: 'give --input FILE or pipe the data in' });
    return readAll(process.stdin, 'stdin', limitBytes);
  }
  const stats = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new JraidError('E_INPUT', `cannot use the input file ${path}: ${error.code ?? error.message}`, { path, hint: 'check the path' });
  });
  if (!stats) throw new JraidError('E_INPUT', `input file ${path} does not exist`, { path, hint: 'check the path' });
  if (stats.isDirectory()) throw new JraidError('E_INPUT', `input ${path} is a directory`, { path });
  if (!stats.isFile()) return readAll(createReadStream(path), path, limitBytes);
  if (stats.size > limitBytes) {
    throw new JraidError('E_OUT_OF_RANGE', `${path} is ${stats.size} bytes but only ${limitBytes} bytes are left in the array after the offset; nothing was written`, { path, hint: 'use a smaller input or offset' });
  }
  return undefined;
}

async function readAll(stream: AsyncIterable<unknown>, name: string, limitBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const part of stream) {
      total += (part as Buffer).length;
      if (total > limitBytes) {
        throw new JraidError('E_OUT_OF_RANGE', `${name} holds more than the ${limitBytes} bytes left in the array after the offset; nothing was written`, { hint: 'use a smaller input or offset' });
      }
      parts.push(part as Buffer);
    }
  } catch (error) {
    if (error instanceof JraidError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new JraidError(code === 'EACCES' || code === 'EPERM' ? 'E_PERMISSION' : 'E_INPUT', `cannot read ${name}: ${code ?? (error as Error).message}`, { hint: 'give --input a file you may read' });
  }
  return Buffer.concat(parts);
}

async function writeCommand(spec: string, options: WriteCliOptions): Promise<number> {
  const out = outputFor(options);
  const { value: bytesWritten, final } = await withTarget(spec, options, {}, out, async (array) => {
    if (options.offset > array.sizeBytes) {
      throw new JraidError('E_OUT_OF_RANGE', `offset ${options.offset} is past the end of the array (${array.sizeBytes} bytes); nothing was written`);
    }
    const limit = array.sizeBytes - options.offset;
    const data = await readInput(options.input, limit);
    let written = 0;
    if (data) {
      for (let at = 0; at < data.length; at += TRANSFER_CHUNK_BYTES) {
        const piece = data.subarray(at, at + TRANSFER_CHUNK_BYTES);
        await array.write(options.offset + at, piece);
        written += piece.length;
      }
    } else {
      const handle = await open(options.input!, 'r').catch((error: NodeJS.ErrnoException) => {
        throw new JraidError(error.code === 'EACCES' || error.code === 'EPERM' ? 'E_PERMISSION' : 'E_INPUT', `cannot read the input file ${options.input}: ${error.code ?? error.message}`, {
          path: options.input, hint: 'give --input a file you may read',
        });
      });
      try {
        const buf = Buffer.alloc(TRANSFER_CHUNK_BYTES);
        for (;;) {
          const { bytesRead } = await handle.read(buf, 0, buf.length, written);
          if (bytesRead === 0) break;
          if (written + bytesRead > limit) throw new JraidError('E_OUT_OF_RANGE', `${options.input} grew past the end of the array while being written`, { path: options.input });
          await array.write(options.offset + written, buf.subarray(0, bytesRead));
          written += bytesRead;
        }
      } finally {
        await handle.close();
      }
    }
    await array.flush();
    return written;
  });
  const result = { bytesWritten, offsetBytes: options.offset, state: final.health };
  if (final.lostMembers.length > 0) out.warn(`the array is ${final.health}: ${final.lostMembers.join(', ')} ${final.lostMembers.length === 1 ? 'is' : 'are'} faulty or missing`);
  out.result(result, () => `jraid: wrote ${result.bytesWritten} bytes at offset ${result.offsetBytes}${result.state === 'degraded' ? ' (array degraded)' : ''}`);
  return exitCodeForState(result.state);
}

async function readCommand(spec: string, options: ReadCliOptions): Promise<number> {
  const toStdout = options.output === undefined || options.output === '-';
  if (toStdout && process.stdout.isTTY) {
    throw new JraidError('E_USAGE', 'refusing to write binary data to a terminal', { hint: 'give --output FILE or pipe the output' });
  }
  if (toStdout && options.json) throw new JraidError('E_USAGE', '--json needs --output FILE: stdout carries the data', { hint: 'add --output FILE' });
  const out = outputFor(options);
  // Read-only, under a shared lock: readers run side by side and write nothing, not even the
  // repair of a read error (the block is rebuilt from parity and returned; scrub --repair or
  // any write of it rewrites it).
  const onEvent = (event: ArrayEvent) => {
    if (event.kind === 'read-error-rebuilt') {
      out.warn(`read error on ${event.path} at member data byte ${event.memberDataOffsetBytes}: rebuilt from parity; not rewritten (read writes nothing: jraid scrub --repair rewrites it)`);
    }
  };
  const { final } = await withTarget(spec, options, { readOnly: true, onEvent }, out, async (array) => {
    if (options.offset + options.length > array.sizeBytes) {
      throw new JraidError('E_OUT_OF_RANGE', `range ${options.offset}+${options.length} ends past the array (${array.sizeBytes} bytes)`, { hint: `the last byte is at offset ${array.sizeBytes - 1}` });
    }
    const handle = toStdout ? undefined : await open(options.output!, 'w').catch((error: NodeJS.ErrnoException) => {
      throw new JraidError(error.code === 'EACCES' || error.code === 'EPERM' ? 'E_PERMISSION' : 'E_INPUT', `cannot write the output file ${options.output}: ${error.code ?? error.message}`, {
        path: options.output, hint: 'give --output a path you may write',
      });
    });
    try {
      for (let done = 0; done < options.length; done += TRANSFER_CHUNK_BYTES) {
        const length = Math.min(TRANSFER_CHUNK_BYTES, options.length - done);
        const data = await array.read(options.offset + done, length);
        if (handle) await handle.write(data, 0, data.length, done);
        else await writeStdout(data);
      }
    } finally {
      await handle?.close();
    }
  });
  const state = final.health;
  if (!toStdout) out.result({ bytesRead: options.length, offsetBytes: options.offset, output: options.output, state }, () => `jraid: read ${options.length} bytes at offset ${options.offset} into ${options.output}`);
  return exitCodeForState(state);
}

function writeStdout(data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (error) => (error ? reject(error) : resolve()));
  });
}
