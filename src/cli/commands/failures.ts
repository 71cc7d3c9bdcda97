// fail-disk, add, rebuild, re-add, scrub: member failures and their repair.

import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { InvalidArgumentError } from 'commander';
import { readConfig, saveArrayToConfig } from '../../app/config.js';
import type { RebuildOutcome } from '../../engine/maintenance.js';
import type { ScrubMismatch } from '../../engine/scrub.js';
import { resolveArraySpec } from '../../app/open.js';
import { opAdd, opFailDisk, opReAdd, opRebuild, opRemove, opScrub } from '../../app/operations.js';
import { EXIT_DEGRADED, EXIT_OK } from '../../errors.js';
import { formatUuid } from '../../format/uuid.js';
import { recordScrub } from '../../daemon/scrub-record.js';
import { exclusiveNotice, onArray } from '../route.js';
import { exitCodeFor } from '../../app/result-status.js';
import { formatSizeBytes, parseSizeBytes } from '../../units.js';
import { configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import type { Output } from '../output.js';
import { Progress } from '../progress.js';

interface ForceOptions extends CommonOptions { force?: boolean }
interface SpeedOptions extends CommonOptions { maxSpeed?: number }

/** "50M", "50M/s", "1G": bytes per second; a bare number is KiB/s, as md's speed limits (speed_limit_max). */
export function rateArg(value: string): number {
  const text = value.replace(/\/s$/i, '').trim();
  const parsed = parseSizeBytes(/^\d+$/.test(text) ? `${text}K` : text);
  if (parsed === undefined || parsed <= 0) throw new InvalidArgumentError(`"${value}" is not a rate (a bare number is KiB/s, as md's; or 50M, 50M/s)`);
  return parsed;
}

const ARRAY_ARG = ['<array>', 'NAME from the config file, or MEMBER,MEMBER,...'] as const;

export function registerFailures(program: Command, run: Run): void {
  withCommonOptions(program.command('fail-disk')
    .description('mark a member faulty on every other member; the array carries on degraded')
    .argument(...ARRAY_ARG)
    .argument('<member>', 'the member to fail')
    .option('-f, --force', 'fail it even when that leaves the array unusable'))
    .action((spec: string, member: string, options: ForceOptions) => run(failDiskCommand(spec, member, options)));
  withCommonOptions(program.command('add')
    .description('add a spare member')
    .argument(...ARRAY_ARG)
    .argument('<path>', 'image file or block device')
    .option('-f, --force', 'overwrite a member of another jraid array'))
    .action((spec: string, path: string, options: ForceOptions) => run(addCommand(spec, path, options)));
  withCommonOptions(program.command('remove')
    .description('remove faulty members or spares from the member table, freeing their slots')
    .argument(...ARRAY_ARG)
    .argument('<member>', 'the member: its path or uuid, or "failed" for every faulty member'))
    .action((spec: string, member: string, options: CommonOptions) => run(removeCommand(spec, member, options)));
  withCommonOptions(program.command('rebuild')
    .description('rebuild lost members onto a replacement or a spare; resumes an interrupted rebuild')
    .argument(...ARRAY_ARG)
    .option('--replacement <path>', 'rebuild onto this member (new, or the one whose rebuild was interrupted)')
    .option('--max-speed <rate>', 'limit the rebuild rate, in array data per second (a bare number is KiB/s, as md; or 50M, 50M/s)', rateArg)
    .option('-f, --force', 'overwrite a replacement that belongs to another jraid array'))
    .action((spec: string, options: SpeedOptions & ForceOptions & { replacement?: string }) => run(rebuildCommand(spec, options)));
  withCommonOptions(program.command('re-add')
    .description('take back a member that left; rebuild only what was written while it was away')
    .argument(...ARRAY_ARG)
    .argument('<member>', 'the returning member (name the array with it among its paths)')
    .option('--max-speed <rate>', 'limit the rebuild rate, in array data per second (a bare number is KiB/s; or 50M/s)', rateArg))
    .action((spec: string, member: string, options: SpeedOptions) => run(reAddCommand(spec, member, options)));
  withCommonOptions(program.command('scrub')
    .description('read every stripe and check parity; --repair fixes mismatches')
    .argument(...ARRAY_ARG)
    .option('--repair', 'rewrite bad parity (RAID-6: fix the one bad chunk P and Q name)')
    .option('--restart', 'start from the beginning instead of the saved checkpoint')
    .option('--max-speed <rate>', 'limit the scrub rate, in array data per second (a bare number is KiB/s; or 50M/s)', rateArg))
    .action((spec: string, options: SpeedOptions & { repair?: boolean; restart?: boolean }) => run(scrubCommand(spec, options)));
}

/** Keeps the config file's member list true after members change (only for arrays named from it). */
export async function refreshConfig(spec: string, memberPaths: string[], options: CommonOptions, out: Output): Promise<void> {
  const configFile = configFor(options);
  const resolved = await resolveArraySpec(spec, configFile).catch(() => undefined);
  if (!resolved?.fromConfig || !resolved.name) return;
  const config = await readConfig(configFile);
  const entry = config.arrays.find((array) => array.name === resolved.name);
  if (!entry?.uuid) return;
  const devices = memberPaths.map((path) => resolve(path));
  if (devices.join(',') === entry.devices.join(',')) return;
  await saveArrayToConfig(configFile, { name: entry.name, uuid: entry.uuid, devices });
  out.info(`updated ${configFile}: ${entry.name} devices=${devices.join(',')}`);
}

async function failDiskCommand(spec: string, member: string, options: ForceOptions): Promise<number> {
  const out = outputFor(options);
  const args = { member, force: !!options.force };
  const result = await onArray(spec, options, 'fail-disk', args, (assembled) => opFailDisk(assembled, args));
  out.result(result, () => `jraid: set ${member} faulty; the array is ${result.arrayState}`);
  return exitCodeFor(result);
}

async function addCommand(spec: string, path: string, options: ForceOptions): Promise<number> {
  const out = outputFor(options);
  const args = { path, force: !!options.force };
  const result = await onArray(spec, options, 'add', args, (assembled) => opAdd(assembled, args));
  await refreshConfig(spec, result.memberPaths, options, out);
  out.result(result, () => `jraid: added ${path} as a spare${result.lost ? '; the array is degraded: run jraid rebuild to rebuild onto it' : ''}`);
  return exitCodeFor(result);
}

async function removeCommand(spec: string, member: string, options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const args = { member };
  const result = await onArray(spec, options, 'remove', args, (assembled) => opRemove(assembled, args));
  await refreshConfig(spec, result.memberPaths, options, out);
  out.result(result, () => result.removed.map((gone) =>
    `jraid: removed ${gone.path ?? gone.uuid} (member ${gone.number}, ${gone.state}) from the array; its slot is free for a new member`).join('\n'));
  return exitCodeFor(result);
}

function describeOutcome(outcome: RebuildOutcome): string {
  const rate = outcome.seconds > 0 ? `${formatSizeBytes(outcome.bytesWritten / outcome.seconds)}/s` : '-';
  const resumed = outcome.resumedFromBytes > 0 ? `, resumed at ${formatSizeBytes(outcome.resumedFromBytes)}` : '';
  return `jraid: rebuilt role ${outcome.role} onto ${outcome.path} (${outcome.mode}${resumed}): ${outcome.stripesRebuilt} stripes, ${formatSizeBytes(outcome.bytesWritten)} in ${outcome.seconds.toFixed(1)} s (${rate})`;
}

async function rebuildCommand(spec: string, options: SpeedOptions & ForceOptions & { replacement?: string }): Promise<number> {
  const out = outputFor(options);
  const progress = new Progress('rebuild', out.progressAllowed);
  const args = { replacement: options.replacement, maxSpeed: options.maxSpeed, force: !!options.force };
  const notice = exclusiveNotice((message) => out.info(message), spec, 'rebuild');
  const onProgress = (p: { doneBytes: number; totalBytes: number }) => { notice.started(); progress.update(p.doneBytes, p.totalBytes); };
  // The config file names the replacement as soon as it joins, so that detail shows it while the
  // rebuild runs and a killed rebuild resumes with `jraid rebuild NAME`.
  const onMembersChanged = (paths: string[]) => refreshConfig(spec, paths, options, out)
    .catch((error: Error) => out.warn(`the rebuild goes on, but the config file was not updated: ${error.message}`));
  const result = await onArray(spec, options, 'rebuild', args, (assembled) => opRebuild(assembled, args, { onProgress, onMembersChanged }), { onProgress, onMembersChanged, onDirect: notice.onDirect });
  progress.done();
  if (result.rebuilt.length > 0) await refreshConfig(spec, result.memberPaths, options, out);
  // More roles were lost than replacements and spares given: say what the rest need.
  const hint = result.lostRoles.length > 0
    ? result.lostRoles.map((role) => `role ${role} is still lost: it needs a second replacement or a spare (jraid rebuild ${spec} --replacement PATH, or jraid add ${spec} PATH and then jraid rebuild ${spec})`).join('; ')
    : null;
  out.result({ ...result, hint }, () => [
    ...(result.rebuilt.length === 0 ? ['jraid: nothing to rebuild: no member is lost'] : result.rebuilt.map(describeOutcome)),
    ...(hint ? [`jraid: ${hint}`] : []),
  ].join('\n'));
  return exitCodeFor(result);
}

async function reAddCommand(spec: string, member: string, options: SpeedOptions): Promise<number> {
  const out = outputFor(options);
  const progress = new Progress('re-add', out.progressAllowed);
  const args = { member, maxSpeed: options.maxSpeed };
  const onProgress = (p: { doneBytes: number; totalBytes: number }) => progress.update(p.doneBytes, p.totalBytes);
  const result = await onArray(spec, options, 're-add', args, (assembled) => opReAdd(assembled, args, { onProgress }), { onProgress });
  progress.done();
  out.info(`re-added ${member}: ${result.mode === 'partial' ? 'only regions written while it was away' : 'full rebuild'} (${result.reason})`);
  out.result(result, () => describeOutcome(result));
  return exitCodeFor(result);
}

function describeMismatch(m: ScrubMismatch): string {
  const where = `stripe ${m.stripe} (array bytes ${m.arrayOffsetBytes}..${m.arrayOffsetBytes + m.arrayLengthBytes - 1}): ${m.blocks} block(s)`;
  if (m.bad === 'parity-mismatch') {
    return `${where}, parity mismatch: single parity cannot tell which chunk is wrong${m.repaired ? ' - parity rewritten from the data' : ''}`;
  }
  const what = m.bad === 'unknown' ? 'more than one chunk bad' : `bad ${m.bad}${m.role !== null ? ` on role ${m.role} (${m.path})` : ''}`;
  return `${where}, ${what}${m.repaired ? ' - repaired' : ''}`;
}

async function scrubCommand(spec: string, options: SpeedOptions & { repair?: boolean; restart?: boolean }): Promise<number> {
  const out = outputFor(options);
  const progress = new Progress(options.repair ? 'repair' : 'scrub', out.progressAllowed);
  const args = { repair: !!options.repair, restart: !!options.restart, maxSpeed: options.maxSpeed };
  const notice = exclusiveNotice((message) => out.info(message), spec, options.repair ? 'scrub --repair' : 'scrub');
  const onProgress = (p: { doneBytes: number; totalBytes: number }) => { notice.started(); progress.update(p.doneBytes, p.totalBytes); };
  // Without --repair scrub only looks: members open read-only and nothing is written, not even its checkpoint.
  const outcome = await onArray(spec, options, 'scrub', args, async (assembled) => {
    const result = await opScrub(assembled, args, { onProgress });
    // For jraid status and monitor, where the run directory exists; one this user may not write only loses that line.
    await recordScrub(formatUuid(assembled.array.sb.arrayUuid), result, { onlyIfRunDirExists: true }).catch(() => {});
    return result;
  }, { onProgress, open: { readOnly: !options.repair }, onDirect: notice.onDirect });
  progress.done();
  out.result(outcome, () => {
    const lines = [`jraid: scrub checked ${outcome.stripesChecked} stripes${outcome.resumedFromStripe ? ` (resumed at stripe ${outcome.resumedFromStripe})` : ''} in ${outcome.seconds.toFixed(1)} s: ${outcome.mismatches.length} mismatched stripe(s), ${outcome.mismatchBlocks} block(s)${outcome.repaired && outcome.mismatches.length ? ', repaired' : ''}`];
    for (const m of outcome.mismatches) lines.push(`  ${describeMismatch(m)}`);
    return lines.join('\n');
  });
  return exitCodeFor({ degraded: outcome.degraded, problemsFound: outcome.mismatchCount > 0 });
}
