import type { Command } from 'commander';
import type { Run } from '../run.js';
import { opRecover } from '../../app/operations.js';
import { onArray } from '../route.js';
import { exitCodeFor } from '../../app/result-status.js';
import { outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { Progress } from '../progress.js';

interface RecoverCliOptions extends CommonOptions { force?: boolean }

export function registerRecover(program: Command, run: Run): void {
  withCommonOptions(program.command('recover')
    .description('after an unclean shutdown: restore parity of the stripes the journal lists (journal arrays: settle the interrupted updates; resync arrays: every stripe)')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .option('-f, --force', "recover a dirty degraded array: the lost member's blocks in dirty stripes are recorded bad (EIO until rewritten)"))
    .action((spec: string, options: RecoverCliOptions) => run(recoverCommand(spec, options)));
}

async function recoverCommand(spec: string, options: RecoverCliOptions): Promise<number> {
  const out = outputFor(options);
  const progress = new Progress('recover', out.progressAllowed);
  const onProgress = (p: { doneBytes: number; totalBytes: number }) => progress.update(p.doneBytes, p.totalBytes);
  progress.spin(`recover: assembling ${spec} and reading its journal`);
  let result;
  try {
    result = await onArray(spec, options, 'recover', { force: !!options.force }, (assembled) => opRecover(assembled), {
      open: { forceRecovery: options.force, onRecoveryProgress: onProgress },
    });
  } finally {
    progress.stop();
  }
  progress.done();
  out.result(result, () => {
    const name = result.name || result.uuid;
    if (!result.recovered) return `jraid: ${name} was shut down cleanly: nothing to recover`;
    const what = result.action === 'full-resync'
      ? `full resync of ${result.stripes.length} stripe(s) (no journal)`
      : result.dataJournal
        ? `settled ${result.dataJournal.updates} interrupted update(s) from the data journals, ${result.dataJournal.rolledForward} rolled forward (${Object.entries(result.dataJournal.rules).map(([rule, count]) => `${rule}: ${count}`).join(', ')})`
        : `resynced ${result.stripes.length} dirty stripe(s) listed by journal generation ${result.generation}: ${result.stripes.slice(0, 32).join(', ')}${result.stripes.length > 32 ? ', ...' : ''}`;
    const lines = [`jraid: recovered ${name}: ${what} in ${result.seconds.toFixed(2)} s`];
    for (const range of [...result.tornBlocks, ...result.lostBlocks, ...result.unreadableBlocks]) {
      lines.push(`  bad: array bytes ${range.firstBlock * 4096}..${(range.firstBlock + range.blockCount) * 4096 - 1} (${range.reason}): read as EIO until rewritten`);
    }
    return lines.join('\n');
  });
  return exitCodeFor({ degraded: result.degraded, problemsFound: result.tornBlocks.length + result.lostBlocks.length + result.unreadableBlocks.length > 0 });
}
