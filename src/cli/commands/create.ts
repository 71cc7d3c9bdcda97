import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { createArray } from '../../engine/create.js';
import { checkConfigAcceptsNewArray, saveArrayToConfig } from '../../app/config.js';
import { formatUuid } from '../../format/uuid.js';
import { JraidError } from '../../errors.js';
import { formatSizeBytes } from '../../units.js';
import { configFor, intArg, kibDefaultArg, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { keyValues } from '../output.js';
import { Progress } from '../progress.js';

interface CreateCliOptions extends CommonOptions {
  level: string;
  raidDevices: number;
  spareDevices?: number;
  chunk?: number;
  layout?: string;
  name?: string;
  size?: number;
  assumeClean?: boolean;
  force?: boolean;
  consistencyPolicy?: string;
  clusterNodes?: number;
  journalSize?: number;
  saveConfig?: boolean;
}

/** md's short layout names, as mdadm --layout takes them. */
const LAYOUT_SHORT_NAMES: Record<string, string> = { ls: 'left-symmetric', la: 'left-asymmetric', rs: 'right-symmetric', ra: 'right-asymmetric' };

export function layoutArg(value: string): string {
  return LAYOUT_SHORT_NAMES[value.toLowerCase()] ?? value;
}

export function registerCreate(program: Command, run: Run): void {
  withCommonOptions(program.command('create')
    .description('create an array: write superblocks and journal regions on every member')
    .argument('<member...>', 'image files or block devices, raid devices first, then spares')
    .requiredOption('-l, --level <level>', 'RAID level: 4, 5 or 6')
    .requiredOption('-n, --raid-devices <count>', 'members that hold data and parity', intArg)
    .option('-x, --spare-devices <count>', 'spares among the members, listed last', intArg)
    .option('-c, --chunk <size>', 'chunk size, a power of two from 4K to 64M (bare number: KiB; default 512K)', kibDefaultArg)
    .option('-p, --layout <layout>', 'parity layout (RAID-5/6: left-symmetric (default), left-asymmetric, right-symmetric, right-asymmetric, or md\'s short ls, la, rs, ra; RAID-4: parity-last)', layoutArg)
    .option('-N, --name <name>', 'array name, used in the config file and by other commands')
    .option('-z, --size <size>', 'size of image files to create where a member path does not exist (bare number: KiB)', kibDefaultArg)
    .option('--assume-clean', 'do not compute parity: the members are known to be zeroed or in sync')
    .option('-f, --force', 'overwrite members that hold another jraid array, a file system, swap, LVM, md or a partition table')
    .option('--consistency-policy <policy>', 'dirty-log (default), journal or resync')
    .option('--journal-size <size>', 'journal policy: the data journal on each member (bare number: KiB; default 16M)', kibDefaultArg)
    .option('--cluster-nodes <count>', 'journal areas for this many cluster nodes (jraid daemon --cluster; format 1.2)', intArg)
    .option('--save-config', 'add the array to the config file'))
    .action((members: string[], options: CreateCliOptions) => run(create(members, options)));
}

async function create(members: string[], options: CreateCliOptions): Promise<number> {
  const out = outputFor(options);
  const level = /^(raid)?[456]$/.test(options.level) ? Number(options.level.replace('raid', '')) : Number.NaN;
  if (Number.isNaN(level)) throw new JraidError('E_BAD_LEVEL', `unknown level "${options.level}"`, { hint: 'use --level 4, 5 or 6' });
  // Every check before anything is written: the config file too, when the array goes in it.
  if (options.saveConfig) await checkConfigAcceptsNewArray(configFor(options), options.name);
  const progress = new Progress('initialising parity', out.progressAllowed);
  const result = await createArray({
    level, raidDevices: options.raidDevices, paths: members, spareCount: options.spareDevices,
    chunkSizeBytes: options.chunk, layout: options.layout, name: options.name, createSizeBytes: options.size,
    assumeClean: options.assumeClean, force: options.force, policy: options.consistencyPolicy, clusterNodes: options.clusterNodes,
    journalSizeBytes: options.journalSize,
  }, (p) => progress.update(p.doneBytes, p.totalBytes));
  progress.done();
  const sb = result.superblock;
  const uuid = formatUuid(sb.arrayUuid);
  const name = sb.name || uuid;
  if (options.saveConfig) {
    await saveArrayToConfig(configFor(options), { name, uuid, devices: members.map((path) => resolve(path)) });
  }
  out.result({
    name: sb.name, uuid, level: sb.level, layout: sb.layout, chunkSizeBytes: sb.chunkSizeBytes,
    raidDevices: sb.raidDevices, spareDevices: members.length - sb.raidDevices, arraySizeBytes: sb.arraySizeBytes,
    memberDataSizeBytes: sb.dataSizeBytes, consistencyPolicy: sb.policy,
    journalSizeBytes: sb.regions.find((region) => region.kind === 'data-journal')?.sizeBytes ?? null,
    members: members.map((path, number) => ({ path, number, role: sb.members[number]?.role ?? null, state: sb.members[number]?.state ?? 'spare', memberUuid: sb.members[number] ? formatUuid(sb.members[number]!.uuid) : null })),
    createdPaths: result.createdPaths,
    parity: result.parityInitialised, savedConfig: options.saveConfig ? configFor(options) : null,
  }, () => {
    const parityNote = {
      computed: 'computed from the members\' contents',
      'skipped-new-members': 'not computed: every member is new and zeroed',
      'skipped-assume-clean': 'not computed (--assume-clean)',
    }[result.parityInitialised];
    return `jraid: created RAID-${sb.level} array ${name}\n${keyValues([
      ['UUID', uuid],
      ['Array Size', `${formatSizeBytes(sb.arraySizeBytes)} (${sb.arraySizeBytes} bytes)`],
      ['Members', `${sb.raidDevices} raid devices${members.length > sb.raidDevices ? `, ${members.length - sb.raidDevices} spare` : ''}`],
      ['Layout', sb.layout],
      ['Chunk Size', formatSizeBytes(sb.chunkSizeBytes)],
      ['Consistency Policy', sb.policy],
      ...(sb.policy === 'journal' ? [['Journal Size', `${formatSizeBytes(sb.regions.find((region) => region.kind === 'data-journal')!.sizeBytes)} per member`] as [string, string]] : []),
      ['Parity', parityNote],
      ...(result.createdPaths.length ? [['Created', result.createdPaths.join(', ')] as [string, string]] : []),
      ...(options.saveConfig ? [['Config', `saved to ${configFor(options)}`] as [string, string]] : []),
    ])}`;
  });
  return 0;
}
