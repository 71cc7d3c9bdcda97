import type { Command } from 'commander';
import type { Run } from '../run.js';
import { examineMember, type MemberExamination } from '../../app/describe.js';
import { isJraidError, JraidError, EXIT_FAILED, EXIT_OK } from '../../errors.js';
import { formatSizeBytes } from '../../units.js';
import { outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { keyValues, printError, table } from '../output.js';
import { examineScan } from './scan.js';

export function registerExamine(program: Command, run: Run): void {
  withCommonOptions(program.command('examine')
    .description("dump each member's superblock and region table")
    .argument('<member...>', 'image files or block devices')
    .option('-s, --scan', 'print an ARRAY line for each array the members belong to'))
    .action((members: string[], options: CommonOptions & { scan?: boolean }) => run(options.scan ? examineScan(members, options) : examine(members, options)));
}

async function examine(paths: string[], options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const results: (Omit<MemberExamination, 'problem'> | { path: string; error: { code: string; message: string } })[] = [];
  let exitCode = EXIT_OK;
  for (const path of paths) {
    try {
      const { problem, ...examination } = await examineMember(path);
      results.push({ ...examination, ...(problem ? { error: { code: problem.code, message: problem.message } } : {}) });
      if (!examination.superblock || problem) exitCode = EXIT_FAILED;
      if (!out.json) out.result(null, () => formatExamination({ ...examination, problem }));
      if (problem && !out.json) printError(problem, false);
    } catch (error) {
      if (!isJraidError(error)) throw error;
      exitCode = EXIT_FAILED;
      results.push({ path, error: { code: error.code, message: error.message } });
      if (!out.json) printError(error as JraidError, false);
    }
  }
  if (out.json) out.result({ examined: results }, () => '');
  return exitCode;
}

function formatExamination(examination: MemberExamination): string {
  const sb = examination.superblock;
  const problems: string[] = [];
  // examine writes nothing: a damaged copy is repaired by a writing command.
  const repair = sb ? ' (examine writes nothing; a writing command, such as jraid assemble, rewrites it)' : '';
  if (examination.primaryProblem) problems.push(`primary superblock: ${examination.primaryProblem}${repair}`);
  if (examination.secondaryProblem) problems.push(`secondary superblock: ${examination.secondaryProblem}${repair}`);
  if (!sb) return `${examination.path}:\n  no valid superblock\n  ${problems.join('\n  ')}\n`;
  const kv = keyValues([
    ['Version', sb.version],
    ['Array UUID', sb.arrayUuid],
    ['Name', sb.name || '(unnamed)'],
    ['Raid Level', `raid${sb.level}`],
    ['Layout', sb.layout],
    ['Chunk Size', formatSizeBytes(sb.chunkSizeBytes)],
    ['Raid Devices', sb.raidDevices],
    ['Consistency Policy', sb.consistencyPolicy],
    ['Array Size', `${formatSizeBytes(sb.arraySizeBytes)} (${sb.arraySizeBytes} bytes)`],
    ['Member Size', `${formatSizeBytes(sb.memberSizeBytes)} (${sb.memberSizeBytes} bytes)`],
    ['Used Dev Size', `${formatSizeBytes(sb.dataSizeBytes)} (${sb.dataSizeBytes} bytes)`],
    ['Member UUID', sb.memberUuid],
    ['Member Number', sb.thisIndex],
    ['Role', sb.role === null ? 'spare' : sb.role],
    ['State', sb.state],
    ['Events', sb.events],
    ['Flags', sb.flags & 1 ? 'dirty' : 'clean'],
    ['Creation Time', sb.createdAt],
    ['Update Time', sb.updatedAt],
  ]);
  const regions = table(['Region', 'Offset', 'Size'], sb.regions.map((region) => [region.kind, region.offsetBytes, formatSizeBytes(region.sizeBytes)]));
  const members = table(['Number', 'RaidDevice', 'State', 'UUID'], sb.members.map((member) => [member.number, member.role ?? '-', member.state, member.uuid]));
  const journal = examination.journal.length === 0 ? '' : `\n\n${table(['Journal Slot', 'Generation', 'Clean', 'Dirty Stripes'], examination.journal.map((slot) => [
    slot.slot, slot.generation ?? '-', slot.clean === null ? '-' : slot.clean ? 'yes' : 'no',
    slot.problem ?? (slot.stripes.length > 12 ? `${slot.stripes.slice(0, 12).join(', ')}, ... (${slot.stripes.length})` : slot.stripes.join(', ') || '-'),
  ]))}`;
  return `${examination.path}:\n${kv}\n\n${regions}\n\n${members}${journal}${problems.length ? `\n\nwarning: ${problems.join('\nwarning: ')}` : ''}\n`;
}
