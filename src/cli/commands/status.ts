// `jraid status`: every array at once, as /proc/mdstat and `zpool status` show them.

import type { Command } from 'commander';
import type { Run } from '../run.js';
import { collectStatus, type ArrayStatus } from '../../daemon/array-status.js';
import { EXIT_DEGRADED, EXIT_OK } from '../../errors.js';
import { formatSizeBytes } from '../../units.js';
import { configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { table } from '../output.js';
import { formatDuration } from '../progress.js';

export function registerStatus(program: Command, run: Run): void {
  withCommonOptions(program.command('status')
    .description('every array in the config file or served by a daemon: state, members, work under way, what to do')
    .argument('[array...]', 'only these arrays (names or uuids)'))
    .action((names: string[], options: CommonOptions) => run(statusCommand(names, options)));
}

/** Needs attention: exit 3. */
export function troubled(status: ArrayStatus): boolean {
  return status.error !== null || status.needsRecovery || (status.state !== 'clean' && status.state !== 'active');
}

async function statusCommand(names: string[], options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const arrays = await collectStatus(configFor(options), names);
  out.result({ arrays }, () => (arrays.length === 0 ? 'jraid: no arrays: none in the config file and no daemon running' : arrays.map(formatStatus).join('\n\n')));
  return arrays.some(troubled) ? EXIT_DEGRADED : EXIT_OK;
}

function formatWork(work: NonNullable<ArrayStatus['rebuildStatus']>): string {
  if (work.state === 'interrupted') return `interrupted at ${work.percent.toFixed(1)}%`;
  const rate = work.rateBytesPerSecond !== null ? `, ${formatSizeBytes(work.rateBytesPerSecond)}/s, ETA ${formatDuration(work.etaSeconds ?? Infinity)}` : '';
  return `${work.percent.toFixed(1)}% done${rate} (pid ${work.pid}: ${work.command})`;
}

export function formatStatus(status: ArrayStatus): string {
  const rows: [string, string][] = [];
  const head = status.level === null ? status.name : `${status.name}: raid${status.level}, ${formatSizeBytes(status.arraySizeBytes ?? 0)}`;
  rows.push(['array', head]);
  rows.push(['state', `${status.state}${status.needsRecovery ? ' (unclean shutdown: recovery needed)' : ''}`]);
  if (status.error) rows.push(['error', `${status.error.message} [${status.error.code}]`]);
  if (status.uuid) rows.push(['uuid', status.uuid]);
  if (status.journal) {
    rows.push(['journal', `${status.journal.clean ? 'clean' : `dirty, ${status.journal.dirtyStripes.length} stripe(s) listed`}${status.journal.generation !== null ? ` (generation ${status.journal.generation})` : ''}`]);
  }
  if (status.rebuildStatus) rows.push(['rebuild', formatWork(status.rebuildStatus)]);
  if (status.scrubStatus) rows.push(['scrub', formatWork(status.scrubStatus)]);
  rows.push(['scan', status.lastScrub ? `last scrub${status.lastScrub.repair ? ' --repair' : ''} ${status.lastScrub.finishedAt}: ${status.lastScrub.stripesChecked} stripes, ${status.lastScrub.mismatches} mismatch(es)` : 'no scrub since boot']);
  if (status.nodes) {
    for (const node of status.nodes) {
      const serving = node.running ? `running${node.pid !== null ? `, pid ${node.pid}, NBD ${node.nbd.join(' ')}` : ' (on another host)'}` : 'not running';
      const journal = node.journal ? `journal ${node.journal.clean ? 'clean' : `dirty, ${node.journal.stripes} stripe(s)`} (generation ${node.journal.generation})` : 'no journal record';
      rows.push([`node ${node.node}`, `${serving}; ${journal}`]);
    }
  } else {
    rows.push(['daemon', status.daemon ? `pid ${status.daemon.pid}, NBD ${status.daemon.nbd.join(' ')}` : 'none']);
  }
  if (status.action) rows.push(['action', status.action]);
  const lines = rows.map(([key, value]) => `${key.padStart(8)}: ${value}`);
  if (status.members.length > 0) {
    const members = status.members.map((member) => [
      member.path ?? '-', member.number, member.role ?? '-', member.state, member.readErrorsCorrected,
      member.writeErrors ?? '-', member.checksumErrors ?? '-',
    ]);
    lines.push('', table(['MEMBER', 'NUMBER', 'ROLE', 'STATE', 'READ', 'WRITE', 'CKSUM'], members));
  }
  return lines.join('\n');
}
