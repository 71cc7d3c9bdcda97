// Where a daemon tells the CLI it serves an array: $JRAID_RUN_DIR (default /run/jraid, mode
// 0700) holds <uuid>.json with the control socket, NBD addresses, pid and log file. The control
// socket itself proves the daemon is alive; a stale file (dead pid) is ignored and removed.

import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { JraidError } from '../errors.js';

export interface DaemonRecord {
  uuid: string;
  name: string;
  pid: number;
  controlSocket: string;
  nbd: string[];
  log: string | null;
  toughness: string;
  startedAt: string;
  /** Real paths of the members it serves: a standby must name the same ones. */
  members?: string[];
  /** Set when this daemon took the array over from a primary (standby.ts). */
  takeover?: { previousPid: number | null; paused: boolean; takeoverMs: number };
}

export function runDir(): string {
  return process.env.JRAID_RUN_DIR ?? '/run/jraid';
}

export async function ensureRunDir(): Promise<string> {
  const dir = runDir();
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    throw new JraidError('E_DAEMON', `cannot create the run directory ${dir}: ${error.code ?? error.message}`, {
      path: dir, hint: 'set JRAID_RUN_DIR to a directory you may write, or run as root',
    });
  });
  return dir;
}

export function registryPath(uuid: string): string {
  return join(runDir(), `${uuid}.json`);
}

export async function writeRegistry(record: DaemonRecord): Promise<void> {
  await ensureRunDir();
  const path = registryPath(record.uuid);
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, path);
}

export async function removeRegistry(uuid: string): Promise<void> {
  await rm(registryPath(uuid), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readRegistry(uuid: string): Promise<DaemonRecord | undefined> {
  let record: DaemonRecord;
  try {
    record = JSON.parse(await readFile(registryPath(uuid), 'utf8')) as DaemonRecord;
  } catch {
    return undefined;
  }
  if (!alive(record.pid)) {
    await removeRegistry(uuid).catch(() => {});
    return undefined;
  }
  return record;
}
