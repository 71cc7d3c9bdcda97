// zero-superblock: erase jraid's metadata from members so they can be reused.

import type { Command } from 'commander';
import type { Run } from '../run.js';
import { readRegistry } from '../../daemon/registry.js';
import { zeroSuperblocks } from '../../engine/zero-superblock.js';
import { EXIT_OK } from '../../errors.js';
import { formatSizeBytes } from '../../units.js';
import { outputFor, withCommonOptions, type CommonOptions } from '../options.js';

export function registerZeroSuperblock(program: Command, run: Run): void {
  withCommonOptions(program.command('zero-superblock')
    .description("erase jraid's superblocks, bad-block list, write-intent bitmap and journal from members, so they can be reused")
    .argument('<member...>', 'image files or block devices'))
    .action((members: string[], options: CommonOptions) => run(zeroSuperblockCommand(members, options)));
}

async function zeroSuperblockCommand(paths: string[], options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const zeroed = await zeroSuperblocks(paths, { servedBy: async (uuid) => (await readRegistry(uuid))?.pid });
  out.result({ zeroed }, () => zeroed.map((member) =>
    `jraid: erased ${formatSizeBytes(member.bytesZeroed)} of metadata on ${member.path}${member.uuid ? ` (was in array ${member.name || member.uuid})` : ''}`).join('\n'));
  return EXIT_OK;
}
