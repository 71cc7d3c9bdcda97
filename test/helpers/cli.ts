// Runs the built jraid binary (as a user would) and gives helpers for member images and loop devices.

import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync, existsSync, statSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The binary under test; JRAID_TEST_BIN runs the suites against another build (e.g. the code before a fix). */
export const JRAID_BIN = process.env.JRAID_TEST_BIN ?? resolve(import.meta.dirname, '../../bin/jraid');
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
  /** Run as this unprivileged uid (and gid), with no supplementary groups (root only: setpriv). */
  asUid?: number;
  /** Kill the command after this long (a hang fails the test instead of the suite). */
  timeoutMs?: number;
}

/** The uid tests use for an unprivileged user (nobody). */
export const NOBODY_UID = 65534;

export async function jraid(args: string[], options: RunOptions & { cwd?: string; config?: string; runDir?: string } = {}): Promise<CliResult> {
  const [file, argv] = options.asUid === undefined
    ? [JRAID_BIN, args]
    : ['setpriv', [`--reuid=${options.asUid}`, `--regid=${options.asUid}`, '--clear-groups', '--', JRAID_BIN, ...args]];
  const result = await execa(file, argv, {
    reject: false,
    input: options.input,
    cwd: options.cwd,
    // Never the real /run/jraid: a scrub keeps its result in the run directory even without a daemon.
    env: { JRAID_CONFIG: options.config ?? '/nonexistent/jraid.conf', JRAID_RUN_DIR: options.runDir ?? join(tmpdir(), 'jraid-test-run'), ...options.env },
    stripFinalNewline: false,
    timeout: options.timeoutMs,
  });
  if (result.timedOut) throw new Error(`jraid ${args.join(' ')} did not finish within ${options.timeoutMs} ms`);
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** The error contract: exactly one line on stderr, "jraid: error: ... [E_CODE]", and no stack trace anywhere. */
export function errorLine(result: CliResult): { code: string; line: string } {
  const lines = result.stderr.split('\n').filter((line) => line.length > 0);
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${lines.length}:\n${result.stderr}`);
  const line = lines[0]!;
  const match = /^jraid: error: .+ \[(E_[A-Z_]+)\]$/.exec(line);
  if (!match) throw new Error(`not an error line with a code: ${line}`);
  if (/\n\s+at /.test(result.stdout + result.stderr) || /internal error/.test(result.stdout + result.stderr)) {
    throw new Error(`stack trace or internal error:\n${result.stdout}${result.stderr}`);
  }
  return { code: match[1]!, line };
}

/** Runs jraid with binary stdout (for `read` to stdout). */
export async function jraidBinary(args: string[], options: { config?: string } = {}): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
  const result = await execa(JRAID_BIN, args, {
    reject: false, encoding: 'buffer', env: { JRAID_CONFIG: options.config ?? '/nonexistent/jraid.conf', JRAID_RUN_DIR: join(tmpdir(), 'jraid-test-run') },
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
    run: (args, options = {}) => jraid(args, { ...options, cwd: dir, config, runDir: join(dir, 'run') }),
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
