// Where a daemon tells the CLI it serves an array: $JRAID_RUN_DIR (default /run/jraid, mode
// 0700) holds <uuid>.json with the control socket, NBD addresses, pid and log file. The control
// socket itself proves the daemon is alive; a stale file (dead pid) is ignored and removed.
//
// Every write and removal of a record happens under one lock, registry.lock in the run
// directory (an OFD lock, let go when its holder dies). A reader that finds a stale record
// removes it only if, under that lock, the file still holds that same record: a standby that
// takes over writes its own record the moment the primary dies, and a reader that had just read
// the primary's must not delete the standby's.

import fsx from 'fs-native-extensions';
import { open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { ensureDirectory, removeFile, writeFileAtomic } from '../files.js';
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
  /** Cluster mode: this daemon's node id. Its files are named <uuid>.node<N>.* beside the others. */
  node?: number;
  /** Set when this daemon took the array over from a primary (standby.ts). */
  takeover?: { previousPid: number | null; paused: boolean; takeoverMs: number };
}

export function runDir(): string {
  return process.env.JRAID_RUN_DIR ?? '/run/jraid';
}

export async function ensureRunDir(): Promise<string> {
  const dir = runDir();
  await ensureDirectory(dir, 0o700).catch((error: NodeJS.ErrnoException) => {
    throw new JraidError('E_DAEMON', `cannot create the run directory ${dir}: ${error.code ?? error.message}`, {
      path: dir, hint: 'set JRAID_RUN_DIR to a directory you may write, or run as root',
    });
  });
  return dir;
}

/** A daemon's name in the run directory: the array uuid, and `.node<N>` for cluster node N. */
export function daemonKey(uuid: string, node?: number): string {
  return node === undefined ? uuid : `${uuid}.node${node}`;
}

export function registryPath(uuid: string, node?: number): string {
  return join(runDir(), `${daemonKey(uuid, node)}.json`);
}

export async function writeRegistry(record: DaemonRecord): Promise<void> {
  await ensureRunDir();
  await underRegistryLock(() => writeFileAtomic(registryPath(record.uuid, record.node), `${JSON.stringify(record, null, 2)}\n`, 0o600));
}

/** Removes the record of array `uuid` (node `node`) if daemon `pid` wrote it; another's stays. */
export async function removeOwnRegistry(uuid: string, pid: number, node?: number): Promise<void> {
  await removeIf(uuid, node, (record) => record.pid === pid);
}

/** Removes the record if it is still there and `matches` it, under the registry lock. */
async function removeIf(uuid: string, node: number | undefined, matches: (record: DaemonRecord) => boolean): Promise<void> {
  await removeRunFileIf(registryPath(uuid, node), (text) => matches(JSON.parse(text) as DaemonRecord));
}

/**
 * Replaces `path`, a file in the run directory that another daemon may remove (the standby's
 * registration, the lease), by a rename under the registry lock.
 */
export async function replaceRunFile(path: string, text: string): Promise<void> {
  await underRegistryLock(async () => {
    const temp = `${path}.tmp-${process.pid}`;
    await writeFile(temp, text, { mode: 0o600 });
    await rename(temp, path);
  });
}

/**
 * Removes `path` if, read under the registry lock, its text `matches`: a file some other
 * daemon replaced since the caller looked stays. An unreadable or unparsable file is kept.
 */
export async function removeRunFileIf(path: string, matches: (text: string) => boolean): Promise<void> {
  await underRegistryLock(async () => {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    let remove = false;
    try {
      remove = text !== undefined && matches(text);
    } catch {
      remove = false;
    }
    if (remove) await removeFile(path);
  });
}

const REGISTRY_LOCK_FILE = 'registry.lock';

/**
 * Runs `work` holding the run directory's registry lock. Where the lock file cannot be made (a
 * read-only run directory), `work` runs without it: such a directory has no writer to race.
 */
async function underRegistryLock<T>(work: () => Promise<T>): Promise<T> {
  const handle = await open(join(runDir(), REGISTRY_LOCK_FILE), 'a', 0o600).catch(() => undefined);
  if (!handle) return work();
  try {
    await fsx.waitForLock(handle.fd, 0, 1);
    try {
      return await work();
    } finally {
      fsx.unlock(handle.fd, 0, 1);
    }
  } finally {
    await handle.close();
  }
}

/** Whether process `pid` exists (EPERM: it does, owned by another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The daemon serving array `uuid`; for an array served by cluster nodes, the live node with the
 * lowest id (the CLI talks to it), or node `node` when given.
 */
export async function readRegistry(uuid: string, node?: number): Promise<DaemonRecord | undefined> {
  if (node !== undefined) return readRecord(uuid, node);
  const single = await readRecord(uuid, undefined);
  if (single) return single;
  for (const found of await clusterNodeIds(uuid)) {
    const record = await readRecord(uuid, found);
    if (record) return record;
  }
  return undefined;
}

/** Node ids with a registry file for array `uuid`, lowest first. */
export async function clusterNodeIds(uuid: string): Promise<number[]> {
  const names = await readdir(runDir()).catch(() => [] as string[]);
  const pattern = new RegExp(`^${uuid}\\.node(\\d+)\\.json$`);
  return names.map((name) => pattern.exec(name)).filter((match) => match !== null).map((match) => Number(match[1])).sort((a, b) => a - b);
}

async function parseRecord(uuid: string, node: number | undefined): Promise<DaemonRecord | undefined> {
  try {
    return JSON.parse(await readFile(registryPath(uuid, node), 'utf8')) as DaemonRecord;
  } catch {
    return undefined;
  }
}

async function readRecord(uuid: string, node: number | undefined): Promise<DaemonRecord | undefined> {
  const record = await parseRecord(uuid, node);
  if (!record) return undefined;
  if (!alive(record.pid)) {
    const stale = (found: DaemonRecord) => found.pid === record.pid && found.startedAt === record.startedAt && !alive(found.pid);
    await removeIf(uuid, node, stale).catch(() => {});
    return undefined;
  }
  return record;
}

/** Every live daemon's record in the run directory (stale ones are removed as they are found). */
export async function listRegistry(): Promise<DaemonRecord[]> {
  const names = await readdir(runDir()).catch(() => [] as string[]);
  const records: DaemonRecord[] = [];
  for (const name of names) {
    const match = /^([0-9a-f-]{36})(?:\.node(\d+))?\.json$/.exec(name);
    if (!match) continue;
    const record = await readRecord(match[1]!, match[2] === undefined ? undefined : Number(match[2]));
    if (record) records.push(record);
  }
  return records;
}

/** The last scrub's outcome, kept beside the registry (so it lasts until reboot, as /run does). */
export interface LastScrub {
  finishedAt: string;
  repair: boolean;
  mismatches: number;
  stripesChecked: number;
  complete: boolean;
}

export function lastScrubPath(uuid: string): string {
  return join(runDir(), `${uuid}.last-scrub.json`);
}

/**
 * `onlyIfRunDirExists`: a scrub run without a daemon records its result only where a daemon (or
 * systemd's RuntimeDirectory) has made the run directory; it never makes one itself.
 */
export async function writeLastScrub(uuid: string, scrub: LastScrub, options: { onlyIfRunDirExists?: boolean } = {}): Promise<void> {
  if (options.onlyIfRunDirExists && !(await stat(runDir()).then((found) => found.isDirectory(), () => false))) return;
  await ensureRunDir();
  await writeFileAtomic(lastScrubPath(uuid), `${JSON.stringify(scrub)}\n`, 0o600);
}

export async function readLastScrub(uuid: string): Promise<LastScrub | null> {
  try {
    return JSON.parse(await readFile(lastScrubPath(uuid), 'utf8')) as LastScrub;
  } catch {
    return null;
  }
}
