// A standby daemon (seed 003: the secondary controller that completes the primary's pending
// writes). It registers in the run directory, then waits while another process holds the array
// lock. It takes the array over when the lock comes free (the primary died or stopped: the
// journal on the members is the checkpoint recovery completes), or when the primary is alive
// but has not renewed its lease for LEASE_STALE_MS (paused): then it claims the lease, waits
// out the primary's last lease, and serves without the lock, fencing the old primary (fence.ts).

import { closeSync } from 'node:fs';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileDevice, openForLock } from '../device/file-device.js';
import { tryLockMember, unlockMember } from '../device/lock.js';
import { checkExpectedUuid } from '../engine/assemble.js';
import { resolveArraySpec } from '../app/open.js';
import { readSuperblocks } from '../engine/superblock-io.js';
import { JraidError } from '../errors.js';
import { formatUuid } from '../format/uuid.js';
import { LEASE_MS, LEASE_RENEW_MS, LEASE_STALE_MS, readLease, writeLease } from './fence.js';
import type { NbdAddress } from './nbd-server.js';
import { alive, ensureRunDir, readRegistry, removeRunFileIf, replaceRunFile, runDir, type DaemonRecord } from './registry.js';

/** How often a standby looks at the lock and the lease. */
export const STANDBY_POLL_MS = 20;

export interface StandbyRecord {
  uuid: string;
  name: string;
  pid: number;
  /** Real paths of the members it will serve. */
  members: string[];
  /** Where it will serve: its --socket/--nbd, or else the primary's (the defaults are the same for both). */
  controlSocket: string | null;
  nbd: string[];
  since: string;
}

/** How a standby came to serve: handed to Daemon.start. */
export interface Takeover {
  /** The primary it replaces (null: none was registered). */
  previousPid: number | null;
  /** True: the primary was alive but silent (paused); the array lock is still its own. */
  paused: boolean;
  /** performance.now() when the standby found the primary gone. */
  detectedAtMs: number;
}

export interface StandbyOptions {
  spec: string;
  configFile: string;
  controlSocket?: string;
  /** Descriptions (describeNbdAddress) of the explicit --nbd addresses. */
  nbd: string[];
  log: (message: string) => void;
  /** Called once registered: the standby is waiting. */
  onRegistered: (record: StandbyRecord) => void;
  signal: AbortSignal;
}

export function standbyPath(uuid: string): string {
  return join(runDir(), `${uuid}.standby.json`);
}

export async function readStandby(uuid: string): Promise<StandbyRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(standbyPath(uuid), 'utf8')) as StandbyRecord;
    return alive(record.pid) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the standby record if it is `pid`'s or a dead standby's (a newer standby's stays). */
export async function removeStandby(uuid: string, pid: number): Promise<void> {
  await removeRunFileIf(standbyPath(uuid), (text) => {
    const record = JSON.parse(text) as StandbyRecord;
    return record.pid === pid || !alive(record.pid);
  });
}

/** The real paths of the members that exist, and their array's uuid and name. */
async function identifyMembers(spec: string, configFile: string): Promise<{ uuid: string; name: string; members: string[]; paths: string[] }> {
  const resolved = await resolveArraySpec(spec, configFile);
  const members: string[] = [];
  const paths: string[] = [];
  let uuid: string | undefined;
  let name = '';
  for (const path of resolved.paths) {
    const device = await FileDevice.open(path, { readOnly: true }).catch((error) => {
      if (resolved.fromConfig) return undefined; // a config-file member that is gone: the array may run without it
      throw error;
    });
    if (!device) continue;
    const read = await readSuperblocks(device).finally(() => device.close());
    if (!read.superblock) throw new JraidError('E_MEMBER_NOT_JRAID', `${path} carries no jraid superblock`, { path, hint: 'check the member paths of the standby' });
    checkExpectedUuid(resolved.expectedUuid, read.superblock.arrayUuid);
    const memberUuid = formatUuid(read.superblock.arrayUuid);
    if (uuid !== undefined && memberUuid !== uuid) {
      throw new JraidError('E_MIXED_ARRAYS', `${path} belongs to array ${memberUuid}, the other members to ${uuid}`, { path, hint: 'name the members of one array' });
    }
    uuid = memberUuid;
    name = read.superblock.name;
    members.push(await realpath(path));
    paths.push(path);
  }
  if (uuid === undefined) throw new JraidError('E_MEMBER_MISSING', `none of the members of ${spec} exists`, { hint: 'check the paths' });
  return { uuid, name: name || (resolved.name ?? uuid), members, paths };
}

/** Refuses a standby that would not replace its primary like for like. */
async function checkAgainstPrimary(uuid: string, members: string[], options: StandbyOptions): Promise<DaemonRecord | undefined> {
  const controlSocket = options.controlSocket ? resolve(options.controlSocket) : undefined;
  for (const file of (await readdir(runDir()).catch(() => [] as string[])).filter((entry) => /^[0-9a-f-]{36}\.json$/.test(entry))) {
    const other = await readRegistry(file.slice(0, -'.json'.length));
    if (!other || other.uuid === uuid) continue;
    const sharedNbd = options.nbd.filter((address) => other.nbd.includes(address));
    if ((controlSocket && resolve(other.controlSocket) === controlSocket) || sharedNbd.length > 0) {
      throw new JraidError('E_REFUSED', `a standby for array ${uuid} cannot stand by for daemon ${other.pid}: it serves another array, ${other.name || other.uuid} (${other.uuid}), on ${controlSocket && resolve(other.controlSocket) === controlSocket ? other.controlSocket : sharedNbd.join(' ')}`, {
        hint: 'name the same array as the primary, or choose other --socket/--nbd addresses',
      });
    }
  }
  const primary = await readRegistry(uuid);
  if (!primary) return undefined;
  if (primary.members) {
    const mine = [...members].sort();
    const theirs = [...primary.members].sort();
    if (mine.length !== theirs.length || mine.some((path, index) => path !== theirs[index])) {
      throw new JraidError('E_REFUSED', `standby refused: daemon ${primary.pid} serves array ${primary.name || uuid} on members ${theirs.join(',')}, and this standby names ${mine.join(',')}`, {
        hint: 'start the standby with the same member paths as the primary',
      });
    }
  }
  if (controlSocket && resolve(primary.controlSocket) !== controlSocket) {
    throw new JraidError('E_USAGE', `standby refused: the primary (pid ${primary.pid}) answers on ${primary.controlSocket}, not ${options.controlSocket}`, { hint: 'give the standby the same --socket as the primary' });
  }
  if (options.nbd.length > 0 && options.nbd.some((address) => !primary.nbd.includes(address))) {
    throw new JraidError('E_USAGE', `standby refused: the primary (pid ${primary.pid}) serves NBD on ${primary.nbd.join(' ')}, not ${options.nbd.join(' ')}`, { hint: 'give the standby the same --nbd addresses as the primary' });
  }
  return primary;
}

/**
 * Registers as the array's standby and waits until it may serve. Resolves with how the array
 * was taken over; rejects with E_DAEMON "stopped" when `signal` aborts (jraid stop --all, SIGTERM).
 */
export async function waitAsStandby(options: StandbyOptions): Promise<Takeover> {
  const { uuid, name, members, paths } = await identifyMembers(options.spec, options.configFile);
  await ensureRunDir();
  const primary = await checkAgainstPrimary(uuid, members, options);
  const existing = await readStandby(uuid);
  if (existing && existing.pid !== process.pid) {
    throw new JraidError('E_REFUSED', `array ${name} already has a standby daemon (pid ${existing.pid})`, { hint: 'one standby per array; jraid stop --all ends both daemons' });
  }
  const record: StandbyRecord = {
    uuid, name, pid: process.pid, members,
    controlSocket: options.controlSocket ?? primary?.controlSocket ?? null, nbd: options.nbd.length > 0 ? options.nbd : primary?.nbd ?? [],
    since: new Date().toISOString(),
  };
  const path = standbyPath(uuid);
  await replaceRunFile(path, `${JSON.stringify(record, null, 2)}\n`);
  options.onRegistered(record);
  try {
    return await waitForTakeover(uuid, paths[0]!, options);
  } catch (error) {
    await removeStandby(uuid, process.pid);
    throw error;
  }
}

async function waitForTakeover(uuid: string, probePath: string, options: StandbyOptions): Promise<Takeover> {
  let announcedPid: number | null | undefined;
  for (;;) {
    if (options.signal.aborted) throw new JraidError('E_DAEMON', 'the standby was stopped before it took over');
    // A shared lock is refused while anyone holds the array for writing: free means the primary is gone.
    const fd = openForLock(probePath, false);
    let free = false;
    if (fd !== undefined) {
      try {
        free = tryLockMember(fd, 'shared');
        if (free) unlockMember(fd);
      } finally {
        closeSync(fd);
      }
    }
    const primary = await readRegistry(uuid);
    if (free) {
      options.log(`standby: the array lock is free${primary || announcedPid ? ` (primary pid ${primary?.pid ?? announcedPid} gone)` : ''}: taking over`);
      return { previousPid: primary?.pid ?? announcedPid ?? null, paused: false, detectedAtMs: performance.now() };
    }
    if (primary?.pid !== announcedPid) {
      announcedPid = primary?.pid ?? null;
      options.log(`standby: waiting for ${primary ? `pid ${primary.pid}` : 'the process holding the array lock'}`);
    }
    const lease = await readLease(uuid);
    if (primary && lease && lease.record.pid === primary.pid && alive(primary.pid) && Date.now() - lease.mtimeMs > LEASE_STALE_MS) {
      const claimed = await claim(uuid, primary.pid, Date.now() - lease.mtimeMs, options);
      if (claimed) return claimed;
    }
    await new Promise((done) => setTimeout(done, STANDBY_POLL_MS));
  }
}

/**
 * The primary lives but has not renewed its lease (paused): name this process in the lease,
 * then wait out the longest lease the primary may still hold. A renewal it started before the
 * claim expires within LEASE_MS; one it starts after sees this pid and fences it.
 */
async function claim(uuid: string, primaryPid: number, silentMs: number, options: StandbyOptions): Promise<Takeover | undefined> {
  const detectedAtMs = performance.now();
  options.log(`standby: primary pid ${primaryPid} has not renewed its lease for ${Math.round(silentMs)} ms (paused?): claiming the array`);
  await writeLease(uuid, { pid: process.pid, claimedFrom: primaryPid });
  await new Promise((done) => setTimeout(done, LEASE_MS + LEASE_RENEW_MS));
  const lease = await readLease(uuid);
  if (lease?.record.pid !== process.pid) {
    options.log(`standby: the lease now names pid ${lease?.record.pid ?? '(none)'}; waiting again`);
    return undefined;
  }
  return { previousPid: primaryPid, paused: true, detectedAtMs };
}
