// The operations commands perform on an assembled array, returning plain objects (the --json
// schema). The CLI runs them directly, or asks a daemon that serves the array to run the same
// ones through its control socket, so output and exit codes are the same either way.

import type { Assembled } from './assemble.js';
import { describeArray, type ArrayDetail } from './describe.js';
import { addSpare, failDisk, prepareReAdd, rebuildArray, runRebuild, type MaintenanceProgress, type RebuildOutcome } from './maintenance.js';
import type { RaidArray } from './raid-array.js';
import { scrubArray, type ScrubOutcome } from './scrub.js';
import type { RecoveryOutcome } from './recover.js';

export interface OpContext {
  onProgress?: (progress: MaintenanceProgress) => void;
}

/** Paths of the members in the array now (for the config file). */
export function currentMemberPaths(array: RaidArray): string[] {
  return [...array.disks].filter(([index]) => array.sb.members[index]!.state !== 'faulty').map(([, disk]) => disk.path);
}

export function opDetail(assembled: Assembled): ArrayDetail {
  return describeArray(assembled.array, assembled.report);
}

export interface FailDiskResult { member: string; role: number | null; state: 'faulty'; arrayState: string; events: number; degraded: boolean }

export async function opFailDisk(assembled: Assembled, args: { member: string; force?: boolean }): Promise<FailDiskResult> {
  const result = await failDisk(assembled, args.member, !!args.force);
  const array = assembled.array;
  return { member: args.member, role: result.role, state: 'faulty', arrayState: result.arrayState, events: array.sb.events, degraded: array.degradedRoles().length > 0 };
}

export interface AddResult { path: string; number: number; state: 'spare'; arrayState: string; lost: boolean; degraded: boolean; memberPaths: string[] }

export async function opAdd(assembled: Assembled, args: { path: string; force?: boolean }): Promise<AddResult> {
  const array = assembled.array;
  const { index } = await addSpare(array, args.path, !!args.force);
  return { path: args.path, number: index, state: 'spare', arrayState: array.health(), lost: array.lostRoles().length > 0, degraded: array.degradedRoles().length > 0, memberPaths: currentMemberPaths(array) };
}

/** `lostRoles`: roles still without a member after the rebuild (more were lost than replacements and spares given). */
export interface RebuildResult { rebuilt: RebuildOutcome[]; arrayState: string; degraded: boolean; lostRoles: number[]; memberPaths: string[] }

export async function opRebuild(assembled: Assembled, args: { replacement?: string; maxSpeed?: number; force?: boolean }, context: OpContext = {}): Promise<RebuildResult> {
  const array = assembled.array;
  const rebuilt = await rebuildArray(assembled, { replacementPath: args.replacement, force: args.force, maxSpeedBytesPerSecond: args.maxSpeed, onProgress: context.onProgress });
  return { rebuilt, arrayState: array.health(), degraded: array.degradedRoles().length > 0, lostRoles: array.lostRoles(), memberPaths: currentMemberPaths(array) };
}

export interface ReAddResult extends RebuildOutcome { reason: string; arrayState: string; degraded: boolean }

export async function opReAdd(assembled: Assembled, args: { member: string; maxSpeed?: number }, context: OpContext & { onPlan?: (plan: { mode: string; reason: string }) => void } = {}): Promise<ReAddResult> {
  const array = assembled.array;
  const plan = await prepareReAdd(assembled, args.member);
  context.onPlan?.(plan);
  const outcome = await runRebuild(array, plan.index, { maxSpeedBytesPerSecond: args.maxSpeed, onProgress: context.onProgress });
  return { ...outcome, reason: plan.reason, arrayState: array.health(), degraded: array.degradedRoles().length > 0 };
}

export interface ScrubResult extends ScrubOutcome { mismatchCount: number; degraded: boolean }

export async function opScrub(assembled: Assembled, args: { repair?: boolean; restart?: boolean; maxSpeed?: number }, context: OpContext = {}): Promise<ScrubResult> {
  const array = assembled.array;
  const outcome = await scrubArray(array, { repair: args.repair, restart: args.restart, maxSpeedBytesPerSecond: args.maxSpeed, onProgress: context.onProgress });
  return { ...outcome, mismatchCount: outcome.mismatches.length, degraded: array.degradedRoles().length > 0 };
}

export interface RecoverResult {
  name: string; uuid: string; recovered: boolean; action: string; generation: number | null;
  stripes: number[]; tornBlocks: RecoveryOutcome['tornBlocks']; lostBlocks: RecoveryOutcome['lostBlocks'];
  seconds: number; arrayState: string; degraded: boolean;
}

/** Recovery runs at assembly; this reports what it did. */
export function opRecover(assembled: Assembled): RecoverResult {
  const { array, report } = assembled;
  const performed = report.recovery && 'stripes' in report.recovery ? report.recovery : undefined;
  return {
    name: report.name, uuid: report.arrayUuid, recovered: !!performed,
    action: performed?.action ?? 'none', generation: performed?.generation ?? null,
    stripes: performed?.stripes ?? [], tornBlocks: performed?.tornBlocks ?? [], lostBlocks: performed?.lostBlocks ?? [],
    seconds: performed?.seconds ?? 0, arrayState: array.health(), degraded: array.degradedRoles().length > 0,
  };
}
