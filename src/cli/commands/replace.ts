// replace: move an active member's role onto another member without losing redundancy.

import type { Command } from 'commander';
import type { Run } from '../run.js';
import { opReplace, type ReplaceResult } from '../../app/replace.js';
import { EXIT_DEGRADED, EXIT_OK } from '../../errors.js';
import { formatSizeBytes } from '../../units.js';
import { outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { Progress } from '../progress.js';
import { exclusiveNotice, onArray } from '../route.js';
import { rateArg, refreshConfig } from './failures.js';

interface ReplaceCliOptions extends CommonOptions { with: string; maxSpeed?: number; force?: boolean }

export function registerReplace(program: Command, run: Run): void {
  withCommonOptions(program.command('replace')
    .description('copy an active member onto another while it stays active (redundancy never drops); the old one becomes a spare')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .argument('<old>', 'the active member to replace')
    .requiredOption('--with <new>', 'the member to copy onto: a spare of the array, or a new member')
    .option('--max-speed <rate>', 'limit the copy rate (a bare number is KiB/s; or 50M, 50M/s)', rateArg)
    .option('-f, --force', 'overwrite a new member that belongs to another jraid array'))
    .action((spec: string, old: string, options: ReplaceCliOptions) => run(replaceCommand(spec, old, options)));
}

function describe(result: ReplaceResult): string {
  const rate = result.seconds > 0 ? `, ${formatSizeBytes(result.bytesCopied / result.seconds)}/s` : '';
  return `jraid: ${result.new.path} replaced ${result.old.path} in role ${result.role}: ${result.stripesCopied} stripes, ${formatSizeBytes(result.bytesCopied)} copied in ${result.seconds.toFixed(1)} s${rate}; ${result.old.path} is now a spare${result.chunksReconstructed ? ` (${result.chunksReconstructed} chunk(s) it could not read were rebuilt from parity)` : ''}`;
}

async function replaceCommand(spec: string, old: string, options: ReplaceCliOptions): Promise<number> {
  const out = outputFor(options);
  const progress = new Progress('replace', out.progressAllowed);
  const args = { old, with: options.with, maxSpeed: options.maxSpeed, force: !!options.force };
  const notice = exclusiveNotice((message) => out.info(message), spec, 'replace');
  const onProgress = (p: { doneBytes: number; totalBytes: number }) => { notice.started(); progress.update(p.doneBytes, p.totalBytes); };
  const onMembersChanged = (paths: string[]) => refreshConfig(spec, paths, options, out)
    .catch((error: Error) => out.warn(`the copy goes on, but the config file was not updated: ${error.message}`));
  const result = await onArray(spec, options, 'replace', args, (assembled) => opReplace(assembled, args, { onProgress, onMembersChanged }), {
    onProgress, onMembersChanged,
    onDirect: notice.onDirect,
  });
  progress.done();
  await refreshConfig(spec, result.memberPaths, options, out);
  out.result(result, () => describe(result));
  return result.degraded ? EXIT_DEGRADED : EXIT_OK;
}
