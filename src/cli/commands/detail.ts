import type { Command } from 'commander';
import type { Run } from '../run.js';
import type { ArrayDetail } from '../../app/describe.js';
import { opDetail } from '../../app/operations.js';
import { onArray } from '../route.js';
import { EXIT_DEGRADED, EXIT_OK, JraidError } from '../../errors.js';
import { detailScan } from './scan.js';
import { exitCodeForState } from '../../app/result-status.js';
import { formatSizeBytes } from '../../units.js';
import { outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { keyValues, table } from '../output.js';

export function registerDetail(program: Command, run: Run): void {
  withCommonOptions(program.command('detail')
    .description("show an array's state: level, sizes, members, events, policy")
    .argument('[array]', 'NAME from the config file, or MEMBER,MEMBER,...')
    .option('-s, --scan', 'print an ARRAY line for each array in the config file, as it is now'))
    .action((spec: string | undefined, options: CommonOptions & { scan?: boolean }) => {
      if (options.scan) {
        if (spec !== undefined) return run(Promise.reject(new JraidError('E_USAGE', 'detail --scan takes no array: it lists every array in the config file', { hint: 'jraid detail --scan, or jraid detail ARRAY' })));
        return run(detailScan(options));
      }
      if (spec === undefined) return run(Promise.reject(new JraidError('E_USAGE', 'no array named', { hint: 'jraid detail ARRAY, or jraid detail --scan' })));
      return run(detail(spec, options));
    });
}

async function detail(spec: string, options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const info = await onArray(spec, options, 'detail', {}, (assembled) => opDetail(assembled), { open: { readOnly: true, lock: 'none' } });
  out.result(info, () => formatDetail(spec, info));
  return exitCodeForState(info.state);
}

export function formatDetail(spec: string, info: ArrayDetail): string {
  const rows: [string, string | number][] = [
    ['Name', info.name || '(unnamed)'],
    ['UUID', info.uuid],
    ['Raid Level', `raid${info.level}`],
    ['Array Size', `${formatSizeBytes(info.arraySizeBytes)} (${info.arraySizeBytes} bytes)`],
    ['Used Dev Size', `${formatSizeBytes(info.memberDataSizeBytes)} (${info.memberDataSizeBytes} bytes)`],
    ['Raid Devices', info.raidDevices],
    ['Total Devices', info.totalDevices],
    ['State', info.state],
    ['Active Devices', info.activeDevices],
    ['Working Devices', info.workingDevices],
    ['Failed Devices', info.failedDevices],
    ['Spare Devices', info.spareDevices],
    ['Layout', info.layout],
    ['Chunk Size', formatSizeBytes(info.chunkSizeBytes)],
    ['Consistency Policy', info.consistencyPolicy],
    ...(info.journal ? [['Journal', info.journal.clean
      ? `clean${info.journal.generation !== null ? ` (generation ${info.journal.generation})` : ''}`
      : `dirty (generation ${info.journal.generation}): ${info.journal.dirtyStripes.length} stripe(s) listed${info.journal.dirtyStripes.length ? '; jraid recover restores them' : ''}`] as [string, string]] : []),
    ...(info.dataJournal ? [['Data Journal', `${formatSizeBytes(info.dataJournal.sizeBytes)} per member, ${info.dataJournal.usedPercent}% used, ${info.dataJournal.updatesInFlight} update(s) in flight`
      + (info.dataJournal.full ? `; FULL: ${info.dataJournal.writersWaiting} writer(s) waiting for room` : '')
      + (info.dataJournal.pendingRecovery ? `; ${info.dataJournal.pendingRecovery} interrupted update(s): jraid recover settles them` : '')] as [string, string]] : []),
    ...(info.dataJournal?.proxies ?? []).map((proxy) => ['Proxy', `role ${proxy.role} for ${proxy.path}: ${proxy.published} update(s) handed over at its failure, ${proxy.served} served since, ${proxy.stripesMarked} stripe(s) marked for its return`] as [string, string]),
    ...(info.badBlocks.length ? [['Bad Blocks', `${info.badBlocks.reduce((sum, r) => sum + r.blockCount, 0)} block(s) read as EIO until rewritten`] as [string, string]] : []),
    ['Events', info.events],
    ['Creation Time', info.createdAt],
    ['Update Time', info.updatedAt],
  ];
  if (info.rebuildStatus) {
    const status = info.rebuildStatus;
    rows.push(['Rebuild Status', `${status.percent}% complete, ${status.state === 'running' ? `running (pid ${status.pid}: ${status.command})` : 'interrupted; jraid rebuild resumes it'}`]);
  }
  if (info.scrubStatus) {
    const status = info.scrubStatus;
    rows.push(['Scrub Status', status.state === 'running'
      ? `running, ${status.percent.toFixed(1)}% checked (pid ${status.pid}: ${status.command})`
      : `interrupted at ${status.percent.toFixed(1)}%; jraid scrub --repair resumes it`]);
  }
  if (info.resyncOffsetBytes < info.memberDataSizeBytes) {
    rows.push(['Resync Status', `${((100 * info.resyncOffsetBytes) / info.memberDataSizeBytes).toFixed(1)}% complete`]);
  }
  rows.push(...daemonRows(info));
  const members = table(['Number', 'RaidDevice', 'State', 'Events', 'ReadErrors', 'Path'], info.members.map((member) => [
    member.number,
    member.role === null ? '-' : member.role,
    member.state === 'rebuilding' ? `rebuilding ${((100 * member.recoveryOffsetBytes) / info.memberDataSizeBytes).toFixed(1)}%` : member.state,
    member.events ?? '-',
    member.readErrorsCorrected,
    member.path ?? (member.state === 'faulty' ? '-' : '(missing)'),
  ]));
  return `${spec}:\n${keyValues(rows)}\n\n${members}${info.notes.length ? `\n\n${info.notes.map((note) => `note: ${note}`).join('\n')}` : ''}`;
}

/** What the daemon adds to `detail` when it answers (daemon.ts): it, its standby, a takeover. */
interface DaemonsDetail {
  pid: number;
  standby?: { pid: number; since: string } | null;
  takeover?: { previousPid: number | null; paused: boolean; takeoverMs: number } | null;
  cluster?: { node: number; nodes: { node: number; self: boolean; running: boolean; journal: { generation: number; clean: boolean; stripes: number } | null }[] } | null;
}

function daemonRows(info: ArrayDetail): [string, string][] {
  const daemon = (info as ArrayDetail & { daemon?: DaemonsDetail }).daemon;
  if (!daemon) return [];
  if (daemon.cluster) {
    const rows: [string, string][] = [['Daemon', `pid ${daemon.pid} (cluster node ${daemon.cluster.node})`]];
    for (const node of daemon.cluster.nodes) {
      const journal = node.journal ? `journal generation ${node.journal.generation}, ${node.journal.clean ? 'clean' : `${node.journal.stripes} stripe(s) listed dirty`}` : 'journal empty';
      rows.push([`Node ${node.node}`, `${node.self ? 'this daemon' : node.running ? 'running' : 'not running'}; ${journal}`]);
    }
    return rows;
  }
  const rows: [string, string][] = [['Daemon', `pid ${daemon.pid} (primary)`]];
  rows.push(['Standby', daemon.standby ? `pid ${daemon.standby.pid} (waiting since ${daemon.standby.since})` : 'none']);
  if (daemon.takeover) {
    const from = daemon.takeover.previousPid !== null ? ` from pid ${daemon.takeover.previousPid}` : '';
    rows.push(['Takeover', `${daemon.takeover.takeoverMs} ms${from} (${daemon.takeover.paused ? 'paused and fenced' : 'gone'})`]);
  }
  return rows;
}
