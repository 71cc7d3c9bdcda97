// The operations commands perform on an assembled array, returning plain objects (the --json
// schema). The CLI runs them directly, or asks a daemon that serves the array to run the same
// ones through its control socket, so output and exit codes are the same either way.

import type { Assembled } from '../engine/assemble.js';
import { thisProcess } from '../device/lock.js';
import { describeArray, type Activity, type ArrayDetail } from './describe.js';
import { addSpare, failDisk, prepareReAdd, rebuildArray, removeMembers, runRebuild, type MaintenanceProgress, type RebuildOutcome, type RemovedMember } from '../engine/maintenance.js';
import type { RaidArray } from '../engine/raid-array.js';
import { scrubArray, type ScrubOutcome } from '../engine/scrub.js';
import type { RecoveryOutcome } from '../engine/recover.js';
import { isDegraded } from './result-status.js';

export interface OpContext {
  onProgress?: (progress: MaintenanceProgress) => void;
  /** The members changed while the operation runs (a replacement joined): for the config file. */
  onMembersChanged?: (memberPaths: string[]) => Promise<void> | void;
}

/** Maintenance running in this process (the daemon serves detail while it runs), by array. */
const running = new WeakMap<RaidArray, Activity[]>();

/** Runs maintenance `operation`, visible to opDetail with its live progress while it runs. */
export async function tracked<T>(array: RaidArray, operation: string, context: OpContext, work: (onProgress: (progress: MaintenanceProgress) => void) => Promise<T>): Promise<T> {
  const activity: Activity = { ...thisProcess(), operation, progress: { doneBytes: 0, totalBytes: 0 }, startedAtMs: Date.now() };
  const list = running.get(array) ?? [];
  list.push(activity);
  running.set(array, list);
  try {
    return await work((progress) => {
      activity.progress = { ...progress };
      context.onProgress?.(progress);
    });
  } finally {
    list.splice(list.indexOf(activity), 1);
  }
}

/** Paths of the members in the array now (for the config file). */
export function currentMemberPaths(array: RaidArray): string[] {
  return [...array.disks].filter(([index]) => array.sb.members[index]!.state !== 'faulty').map(([, disk]) => disk.path);
}

/** Each lost role as the member that held it (its path), or "role N (missing)". */
export function lostMemberNames(array: RaidArray): string[] {
  return array.lostRoles().map((role) => {
    const index = array.memberIndexForRole(role);
    return (index >= 0 ? array.disks.get(index)?.path : undefined) ?? `role ${role} (missing)`;
  });
}

/** The array now; work in progress is what runs in this process or in the process holding the array. */
export function opDetail(assembled: Assembled): ArrayDetail {
  const elsewhere: Activity[] = assembled.report.holders.flatMap((holder) => holder.operation ? [{ operation: holder.operation, pid: holder.pid, command: holder.command }] : []);
  return describeArray(assembled.array, assembled.report, [...(running.get(assembled.array) ?? []), ...elsewhere]);
}

export interface FailDiskResult { member: string; role: number | null; state: 'faulty'; arrayState: string; events: number; degraded: boolean }

export async function opFailDisk(assembled: Assembled, args: { member: string; force?: boolean }): Promise<FailDiskResult> {
  const result = await failDisk(assembled, args.member, !!args.force);
  const array = assembled.array;
  return { member: args.member, role: result.role, state: 'faulty', arrayState: result.arrayState, events: array.sb.events, degraded: isDegraded(array.state()) };
}

export interface AddResult { path: string; number: number; state: 'spare'; arrayState: string; lost: boolean; degraded: boolean; memberPaths: string[] }

export async function opAdd(assembled: Assembled, args: { path: string; force?: boolean }): Promise<AddResult> {
  const array = assembled.array;
  const { index } = await addSpare(array, args.path, !!args.force);
  return { path: args.path, number: index, state: 'spare', arrayState: array.health(), lost: array.lostRoles().length > 0, degraded: isDegraded(array.state()), memberPaths: currentMemberPaths(array) };
}

/** `lostRoles`: roles still without a member after the rebuild (more were lost than replacements and spares given). */
export interface RemoveResult { removed: RemovedMember[]; arrayState: string; degraded: boolean; memberPaths: string[] }

export async function opRemove(assembled: Assembled, args: { member: string }): Promise<RemoveResult> {
  const array = assembled.array;
  const removed = await removeMembers(assembled, args.member);
  return { removed, arrayState: array.health(), degraded: isDegraded(array.state()), memberPaths: currentMemberPaths(array) };
}

export interface RebuildResult { rebuilt: RebuildOutcome[]; arrayState: string; degraded: boolean; lostRoles: number[]; memberPaths: string[] }

export async function opRebuild(assembled: Assembled, args: { replacement?: string; maxSpeed?: number; force?: boolean }, context: OpContext = {}): Promise<RebuildResult> {
  const array = assembled.array;
  const rebuilt = await tracked(array, 'rebuild', context, (onProgress) => rebuildArray(assembled, {
    replacementPath: args.replacement, force: args.force, maxSpeedBytesPerSecond: args.maxSpeed, onProgress,
    onTargetsReady: async () => { await context.onMembersChanged?.(currentMemberPaths(array)); },
  }));
  return { rebuilt, arrayState: array.health(), degraded: isDegraded(array.state()), lostRoles: array.lostRoles(), memberPaths: currentMemberPaths(array) };
}

export interface ReAddResult extends RebuildOutcome { reason: string; arrayState: string; degraded: boolean }

export async function opReAdd(assembled: Assembled, args: { member: string; maxSpeed?: number }, context: OpContext & { onPlan?: (plan: { mode: string; reason: string }) => void } = {}): Promise<ReAddResult> {
  const array = assembled.array;
  const plan = await prepareReAdd(assembled, args.member);
  context.onPlan?.(plan);
  // The member is in the array again (rebuilding): for the config file, and a cluster's nodes follow before the copy.
  await context.onMembersChanged?.(currentMemberPaths(array));
  const outcome = await tracked(array, 're-add', context, (onProgress) => runRebuild(array, plan.index, { maxSpeedBytesPerSecond: args.maxSpeed, onProgress }));
  return { ...outcome, reason: plan.reason, arrayState: array.health(), degraded: isDegraded(array.state()) };
}

export interface ScrubResult extends ScrubOutcome { mismatchCount: number; degraded: boolean }

export async function opScrub(assembled: Assembled, args: { repair?: boolean; restart?: boolean; maxSpeed?: number }, context: OpContext = {}): Promise<ScrubResult> {
  const array = assembled.array;
  const outcome = await tracked(array, 'scrub', context, (onProgress) => scrubArray(array, { repair: args.repair, restart: args.restart, maxSpeedBytesPerSecond: args.maxSpeed, onProgress }));
  return { ...outcome, mismatchCount: outcome.mismatches.length, degraded: isDegraded(array.state()) };
}

export interface RecoverResult {
  name: string; uuid: string; recovered: boolean; action: string; generation: number | null;
  stripes: number[]; tornBlocks: RecoveryOutcome['tornBlocks']; lostBlocks: RecoveryOutcome['lostBlocks']; unreadableBlocks: RecoveryOutcome['unreadableBlocks'];
  seconds: number; arrayState: string; degraded: boolean;
  /** journal policy: the interrupted updates settled, rolled forward, and by which rule. */
  dataJournal: { updates: number; rolledForward: number; rules: Record<string, number> } | null;
}

/** Recovery runs at assembly; this reports what it did. */
export function opRecover(assembled: Assembled): RecoverResult {
  const { array, report } = assembled;
  const performed = report.recovery && 'stripes' in report.recovery ? report.recovery : undefined;
  return {
    name: report.name, uuid: report.arrayUuid, recovered: !!performed,
    action: performed?.action ?? 'none', generation: performed?.generation ?? null,
    stripes: performed?.stripes ?? [], tornBlocks: performed?.tornBlocks ?? [], lostBlocks: performed?.lostBlocks ?? [], unreadableBlocks: performed?.unreadableBlocks ?? [],
    seconds: performed?.seconds ?? 0, arrayState: array.health(), degraded: isDegraded(array.state()),
    dataJournal: performed?.dataJournal ? { updates: performed.dataJournal.updates, rolledForward: performed.dataJournal.rolledForward, rules: { ...performed.dataJournal.rules } } : null,
  };
}
