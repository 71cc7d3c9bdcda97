import type { Command } from 'commander';
import type { Run } from '../run.js';
import type { ArrayDetail } from '../../app/describe.js';
import { opDetail } from '../../app/operations.js';
import { onArray } from '../route.js';
import { exitCodeForState } from '../../app/result-status.js';
import { formatSizeBytes } from '../../units.js';
import { outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { keyValues, table } from '../output.js';

export function registerDetail(program: Command, run: Run): void {
  withCommonOptions(program.command('detail')
    .description("show an array's state: level, sizes, members, events, policy")
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...'))
    .action((spec: string, options: CommonOptions) => run(detail(spec, options)));
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
