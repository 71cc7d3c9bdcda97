// Runs the built jraid binary (as a user would) and gives helpers for member images and loop devices.

import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync, existsSync, statSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const JRAID_BIN = resolve(import.meta.dirname, '../../bin/jraid');
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, DEGRADED: 3 } as const;

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string>;
  encoding?: 'utf8' | 'buffer';
}

export async function jraid(args: string[], options: RunOptions & { cwd?: string; config?: string } = {}): Promise<CliResult> {
  const result = await execa(JRAID_BIN, args, {
    reject: false,
    input: options.input,
    cwd: options.cwd,
    env: { JRAID_CONFIG: options.config ?? '/nonexistent/jraid.conf', ...options.env },
    stripFinalNewline: false,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** Runs jraid with binary stdout (for `read` to stdout). */
export async function jraidBinary(args: string[], options: { config?: string } = {}): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const result = await execa(JRAID_BIN, args, {
    reject: false, encoding: 'buffer', env: { JRAID_CONFIG: options.config ?? '/nonexistent/jraid.conf' },
  });
  return { exitCode: result.exitCode ?? -1, stdout: Buffer.from(result.stdout as Uint8Array), stderr: Buffer.from(result.stderr as Uint8Array).toString() };
}

export interface Workspace {
  dir: string;
  config: string;
  path(name: string): string;
  run(args: string[], options?: RunOptions): Promise<CliResult>;
  cleanup(): void;
}

export function workspace(): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'jraid-test-'));
  const config = join(dir, 'jraid.conf');
  return {
    dir,
    config,
    path: (name) => join(dir, name),
    run: (args, options = {}) => jraid(args, { ...options, cwd: dir, config }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function makeImages(ws: Workspace, names: string[], sizeBytes: number): Promise<string[]> {
  const paths = names.map((name) => ws.path(name));
  for (const path of paths) {
    await writeFile(path, '');
    await truncate(path, sizeBytes);
  }
  return paths;
}

/** sha256 of a whole file or block device. */
export async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4 * 1024 * 1024);
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export async function hashAll(paths: string[]): Promise<string[]> {
  return Promise.all(paths.map((path) => {
    if (!existsSync(path)) return Promise.resolve('absent');
    if (statSync(path).isDirectory()) return Promise.resolve('directory');
    return sha256(path);
  }));
}

export function readJson<T = any>(text: string): T {
  return JSON.parse(text) as T;
}

export { readFileSync };
