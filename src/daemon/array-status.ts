// `jraid status`: every array the config file lists and every array a daemon serves, each
// described as it is now (through its daemon when one serves it, else read-only from its
// members, taking no lock), with the one thing to do next when something needs doing.

import { readConfig } from '../app/config.js';
import type { ArrayDetail } from '../app/describe.js';
import { withArray } from '../app/open.js';
import { opDetail } from '../app/operations.js';
import { JraidError, isJraidError } from '../errors.js';
import { DaemonClient } from './control-client.js';
import { listRegistry, readLastScrub, type DaemonRecord, type LastScrub } from './registry.js';

export interface StatusMember {
  number: number;
  role: number | null;
  state: string;
  path: string | null;
  /** Read errors repaired from parity (kept in the superblock; detail's name for it). */
  readErrorsCorrected: number;
  /** Write errors and scrub checksum mismatches the serving daemon saw since it started; null when none serves. */
  writeErrors: number | null;
  checksumErrors: number | null;
}

export interface ArrayStatus {
  name: string;
  uuid: string | null;
  level: number | null;
  arraySizeBytes: number | null;
  state: string;
  /** An unclean shutdown left parity for recovery (not counted while a daemon serves and writes). */
  needsRecovery: boolean;
  journal: ArrayDetail['journal'];
  members: StatusMember[];
  rebuildStatus: ArrayDetail['rebuildStatus'];
  scrubStatus: ArrayDetail['scrubStatus'];
  lastScrub: LastScrub | null;
  daemon: { pid: number; nbd: string[]; controlSocket: string; toughness: string } | null;
  /**
   * Cluster mode: every node id of the array, whether a daemon runs as it (its pid and NBD
   * exports from its registry record, when it is on this host), and its journal area's state;
   * null for an array served by no cluster node.
   */
  nodes: StatusNode[] | null;
  /** The standby daemon waiting to take the array over (daemon --standby), or null. */
  standby: { pid: number; since: string } | null;
  /** What to do next, or null when nothing needs doing. */
  action: string | null;
  /** Why the array could not be described (its members are missing, ...), else null. */
  error: { code: string; message: string; path: string | null; hint: string | null } | null;
}

export interface DaemonCounters {
  writeErrors: Record<string, number>;
  checksumErrors: Record<string, number>;
}

export interface StatusNode {
  node: number;
  running: boolean;
  pid: number | null;
  nbd: string[];
  journal: { generation: number; clean: boolean; stripes: number } | null;
}

type ClusterDescribed = { nodes: { node: number; running: boolean; journal: StatusNode['journal'] }[] } | null;

type Described = ArrayDetail & { daemon?: { pid: number; nbd: string[]; controlSocket: string; toughness: string; standby?: { pid: number; since: string } | null; cluster?: ClusterDescribed }; counters?: DaemonCounters };

export async function collectStatus(configFile: string, names: string[] = []): Promise<ArrayStatus[]> {
  const config = await readConfig(configFile);
  const served = await listRegistry();
  const seen = new Set<string>();
  const out: ArrayStatus[] = [];
  const unknown = names.filter((name) => !config.arrays.some((entry) => entry.name === name || entry.uuid === name) && !served.some((record) => record.name === name || record.uuid === name));
  if (unknown.length > 0) {
    throw new JraidError('E_ARRAY_UNKNOWN', `no array ${unknown.join(', ')} in ${configFile} or served by a daemon`, { path: configFile, hint: 'jraid status with no names lists every array it knows' });
  }
  const wanted = (name: string, uuid: string | undefined) => names.length === 0 || names.includes(name) || (uuid !== undefined && names.includes(uuid));
  for (const entry of config.arrays) {
    if (!wanted(entry.name, entry.uuid)) continue;
    const record = served.find((candidate) => candidate.uuid === entry.uuid);
    const status = await describeOne(entry.name, record, served, () => withArray(entry.name, configFile, { readOnly: true, lock: 'none' }, async (assembled) => opDetail(assembled)));
    if (status.uuid) seen.add(status.uuid);
    out.push(status);
  }
  for (const record of served) {
    if (seen.has(record.uuid) || !wanted(record.name, record.uuid)) continue;
    out.push(await describeOne(record.name, record, served, () => Promise.reject(new JraidError('E_DAEMON', `daemon ${record.pid} serving ${record.name} did not answer`, { hint: `see its log${record.log ? ` (${record.log})` : ''}` }))));
  }
  return out;
}

async function describeOne(name: string, record: DaemonRecord | undefined, served: DaemonRecord[], direct: () => Promise<ArrayDetail>): Promise<ArrayStatus> {
  let info: Described;
  try {
    info = (record ? await viaDaemon(record) : undefined) ?? await direct();
  } catch (error) {
    if (!isJraidError(error)) throw error;
    return {
      name, uuid: record?.uuid ?? null, level: null, arraySizeBytes: null, state: 'unknown', needsRecovery: false, journal: null, members: [],
      rebuildStatus: null, scrubStatus: null, lastScrub: record ? await readLastScrub(record.uuid) : null, daemon: null, standby: null, nodes: null,
      action: error.hint ?? 'see the error', error: { code: error.code, message: error.message, path: error.path ?? null, hint: error.hint ?? null },
    };
  }
  const daemon = info.daemon ? { pid: info.daemon.pid, nbd: info.daemon.nbd, controlSocket: info.daemon.controlSocket, toughness: info.daemon.toughness } : null;
  const standby = info.daemon?.standby ?? null;
  const needsRecovery = !daemon && !info.clean && info.state !== 'failed';
  const members: StatusMember[] = info.members.map((member) => ({
    number: member.number, role: member.role, state: member.state, path: member.path, readErrorsCorrected: member.readErrorsCorrected,
    writeErrors: info.counters ? info.counters.writeErrors[member.uuid] ?? 0 : null,
    checksumErrors: info.counters ? info.counters.checksumErrors[member.uuid] ?? 0 : null,
  }));
  return {
    name: info.name || name, uuid: info.uuid, level: info.level, arraySizeBytes: info.arraySizeBytes, state: info.state, needsRecovery,
    journal: info.journal, members, rebuildStatus: info.rebuildStatus, scrubStatus: info.scrubStatus, lastScrub: await readLastScrub(info.uuid),
    daemon, standby, nodes: clusterNodes(info, served), action: actionFor(name, info, needsRecovery), error: null,
  };
}

/** Every node of a cluster array: what the answering node knows of each, with the registry's pid and exports of those on this host. */
function clusterNodes(info: Described, served: DaemonRecord[]): StatusNode[] | null {
  const cluster = info.daemon?.cluster;
  if (!cluster) return null;
  return cluster.nodes.map((view) => {
    const record = served.find((candidate) => candidate.uuid === info.uuid && candidate.node === view.node);
    return { node: view.node, running: view.running, pid: view.running ? record?.pid ?? null : null, nbd: view.running ? record?.nbd ?? [] : [], journal: view.journal };
  });
}

async function viaDaemon(record: DaemonRecord): Promise<Described | undefined> {
  const client = await DaemonClient.connect(record);
  if (!client) return undefined;
  try {
    return (await client.call<Described>('detail')).result;
  } finally {
    client.close();
  }
}

/** The one-line hint: the most urgent thing first. */
export function actionFor(name: string, info: ArrayDetail, needsRecovery: boolean): string | null {
  const spares = info.members.filter((member) => member.state === 'spare').length;
  if (info.state === 'failed') return `more members are lost than RAID-${info.level} survives: find the missing members (jraid assemble --scan names them), or restore from backup`;
  if (needsRecovery) return `run jraid recover ${name} (an unclean shutdown left ${info.journal?.dirtyStripes.length ?? 'some'} stripe(s) to restore)`;
  if (info.rebuildStatus?.state === 'running') return null;
  if (info.rebuildStatus?.state === 'interrupted') return `run jraid rebuild ${name} to resume the interrupted rebuild`;
  if (info.state === 'degraded') {
    const stale = info.members.find((member) => member.state === 'stale');
    if (stale) return `re-add the stale member: jraid re-add ${name} ${stale.path}`;
    return spares > 0 ? `run jraid rebuild ${name} to rebuild onto the spare` : `add a spare (jraid add ${name} PATH) and run jraid rebuild ${name}`;
  }
  if (info.scrubStatus?.state === 'interrupted') return `run jraid scrub --repair ${name} to finish the interrupted scrub`;
  if (info.badBlocks.length > 0) return `rewrite or restore the ${info.badBlocks.reduce((sum, range) => sum + range.blockCount, 0)} bad block(s) (jraid detail ${name} lists them)`;
  return null;
}
