import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { assembleArray, type AssembleReport, type ExpectedUuid } from '../../engine/assemble.js';
import { expectedUuidOf } from '../../app/open.js';
import { readConfig, saveArrayToConfig } from '../../app/config.js';
import type { ArrayState, RaidArray } from '../../engine/raid-array.js';
import { EXIT_OK, JraidError } from '../../errors.js';
import { exitCodeForState } from '../../app/result-status.js';
import { configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import type { Output } from '../output.js';

interface AssembleCliOptions extends CommonOptions {
  scan?: boolean;
  force?: boolean;
  readonly?: boolean;
  saveConfig?: boolean;
}

export function registerAssemble(program: Command, run: Run): void {
  withCommonOptions(program.command('assemble')
    .description('assemble an array from its members, check it, and run recovery when needed')
    .argument('[member...]', 'the members, in any order; with --scan, array names from the config file')
    .option('-s, --scan', 'assemble the arrays listed in the config file (all, or those named)')
    .option('-f, --force', 'take back stale members when the array cannot run without them')
    .option('--readonly', 'only look: write nothing to the members')
    .option('--save-config', 'add or update the array in the config file'))
    .action((members: string[], options: AssembleCliOptions) => run(assemble(members, options)));
}

interface AssembleResult {
  name: string;
  uuid: string;
  state: ArrayState;
  events: number;
  members: AssembleReport['members'];
  missingRoles: number[];
  missingPaths: string[];
  stale: string[];
  forced: string[];
  notes: string[];
}

async function assemble(args: string[], options: AssembleCliOptions): Promise<number> {
  const out = outputFor(options);
  const configFile = configFor(options);
  const jobs: { paths: string[]; fromConfig: boolean; expectedUuid?: ExpectedUuid }[] = [];
  if (options.scan) {
    const config = await readConfig(configFile, { mustExist: true });
    const wanted = config.arrays.filter((array) => args.length === 0 || args.includes(array.name));
    const unknown = args.filter((name) => !config.arrays.some((array) => array.name === name));
    if (unknown.length > 0) throw new JraidError('E_ARRAY_UNKNOWN', `${configFile} lists no array ${unknown.join(', ')}`, { path: configFile });
    if (wanted.length === 0) throw new JraidError('E_CONFIG', `${configFile} lists no arrays`, { path: configFile, hint: 'create one with --save-config' });
    for (const array of wanted) jobs.push({ paths: array.devices, fromConfig: true, expectedUuid: expectedUuidOf(array, configFile) });
  } else {
    if (args.length === 0) throw new JraidError('E_USAGE', 'no members given', { hint: 'jraid assemble MEMBER... or jraid assemble --scan' });
    jobs.push({ paths: args, fromConfig: false });
  }
  const results: AssembleResult[] = [];
  let exitCode = EXIT_OK;
  for (const job of jobs) {
    const assembled = await assembleArray(job.paths, { force: options.force, readOnly: options.readonly, skipMissingPaths: job.fromConfig, expectedUuid: job.expectedUuid });
    try {
      const result = summarise(assembled.array, assembled.report);
      await assembled.array.close();
      if (options.saveConfig) {
        await saveArrayToConfig(configFile, {
          name: result.name || result.uuid, uuid: result.uuid,
          devices: assembled.report.members.map((member) => resolve(member.path)),
        });
      }
      results.push(result);
      exitCode = Math.max(exitCode, exitCodeForState(result.state));
      report(out, result);
    } finally {
      await assembled.release();
    }
  }
  if (out.json) out.result(options.scan ? { arrays: results } : results[0], () => '');
  return exitCode;
}

function summarise(array: RaidArray, report: AssembleReport): AssembleResult {
  return {
    name: report.name, uuid: report.arrayUuid, state: array.state(), events: array.sb.events,
    members: report.members, missingRoles: report.missingRoles, missingPaths: report.missingPaths,
    stale: report.stale, forced: report.forced, notes: report.notes,
  };
}

function report(out: Output, result: AssembleResult): void {
  if (out.json) return;
  const name = result.name || result.uuid;
  const used = result.members.filter((member) => !member.excluded && member.role !== null).length;
  for (const note of result.notes) out.info(note);
  for (const member of result.members) if (member.excluded) out.warn(`${member.path}: left out, ${member.excluded}`);
  for (const path of result.missingPaths) out.warn(`${path}: listed in the config file but does not exist`);
  out.result(null, () => `jraid: array ${name} assembled from ${used} member${used === 1 ? '' : 's'}: ${result.state}${result.missingRoles.length ? ` (missing role${result.missingRoles.length > 1 ? 's' : ''} ${result.missingRoles.join(', ')})` : ''}`);
}
