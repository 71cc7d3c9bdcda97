import type { Command } from 'commander';
import type { Run } from '../run.js';
import { withArray } from '../../engine/open.js';
import { EXIT_DEGRADED, EXIT_OK } from '../../errors.js';
import { configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { Progress } from '../progress.js';
import type { RecoveryOutcome } from '../../engine/recover.js';

interface RecoverCliOptions extends CommonOptions { force?: boolean }

export function registerRecover(program: Command, run: Run): void {
  withCommonOptions(program.command('recover')
    .description('after an unclean shutdown: restore parity of the stripes the journal lists (resync arrays: every stripe)')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .option('-f, --force', "recover a dirty degraded array: the lost member's blocks in dirty stripes are recorded bad (EIO until rewritten)"))
    .action((spec: string, options: RecoverCliOptions) => run(recoverCommand(spec, options)));
}

async function recoverCommand(spec: string, options: RecoverCliOptions): Promise<number> {
  const out = outputFor(options);
  const progress = new Progress('recover', out.progressAllowed);
  return withArray(spec, configFor(options), { forceRecovery: options.force, onRecoveryProgress: (p) => progress.update(p.doneBytes, p.totalBytes) }, async ({ array, report }) => {
    progress.done();
    const performed = report.recovery && 'stripes' in report.recovery ? report.recovery as RecoveryOutcome : undefined;
    const result = {
      name: report.name, uuid: report.arrayUuid, recovered: !!performed,
      action: performed?.action ?? 'none', generation: performed?.generation ?? null,
      stripes: performed?.stripes ?? [], tornBlocks: performed?.tornBlocks ?? [], lostBlocks: performed?.lostBlocks ?? [],
      seconds: performed?.seconds ?? 0, arrayState: array.state(),
    };
    out.result(result, () => {
      const name = report.name || report.arrayUuid;
      if (!performed) return `jraid: ${name} was shut down cleanly: nothing to recover`;
      const what = performed.action === 'full-resync'
        ? `full resync of ${performed.stripes.length} stripe(s) (no journal)`
        : `resynced ${performed.stripes.length} dirty stripe(s) listed by journal generation ${performed.generation}: ${performed.stripes.slice(0, 32).join(', ')}${performed.stripes.length > 32 ? ', ...' : ''}`;
      const lines = [`jraid: recovered ${name}: ${what} in ${performed.seconds.toFixed(2)} s`];
      for (const range of [...performed.tornBlocks, ...performed.lostBlocks]) {
        lines.push(`  bad: array bytes ${range.firstBlock * 4096}..${(range.firstBlock + range.blockCount) * 4096 - 1} (${range.reason}): read as EIO until rewritten`);
      }
      return lines.join('\n');
    });
    const problems = result.tornBlocks.length + result.lostBlocks.length > 0 || array.degradedRoles().length > 0;
    return problems ? EXIT_DEGRADED : EXIT_OK;
  });
}
