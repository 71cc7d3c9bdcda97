// What the read and write paths need of the array around them: its geometry, its member set,
// the per-stripe locks, the write-intent marks and journal, and a few array-wide decisions.
// The paths hold no array state of their own.

import type { Geometry } from '../geometry/geometry.js';
import type { WriteJournal } from '../journal/write-journal.js';
import type { MemberSet } from './member-set.js';
import type { StripeLocks } from './stripe-lock.js';
import type { WriteIntent } from './write-intent.js';
import type { ParityLocks } from './parity-lock.js';

/** An array event the engine reports upward (the CLI or daemon decides how to show it). */
export type ArrayEvent =
  | { kind: 'member-failed'; path: string; role: number | null; reason: string }
  | { kind: 'read-error-corrected'; path: string; memberDataOffsetBytes: number }
  /** A read-only array rebuilt an unreadable block from parity and returned it, but wrote nothing. */
  | { kind: 'read-error-rebuilt'; path: string; memberDataOffsetBytes: number };

export interface StripeHost {
  readonly geometry: Geometry;
  readonly members: MemberSet;
  readonly readOnly: boolean;
  readonly locks: StripeLocks;
  readonly writeIntent: WriteIntent;
  readonly journal: WriteJournal | undefined;
  /** Cluster mode: the parity locks that keep other nodes out of a stripe's parity while it changes. */
  readonly parityLocks?: ParityLocks | undefined;
  /** Throws E_ARRAY_FAILED when more roles are lost than the level survives. */
  checkAlive(): void;
  /** Throws E_ARRAY_DIRTY when a read-only array would read what recovery has yet to make true. */
  refuseUnrecovered(stripe: number, reconstructing: boolean): void;
  failMember(index: number, reason: string): Promise<void>;
  report(event: ArrayEvent): void;
}

/** The roles of a stripe by slot: data 0..k-1, then P, then Q. */
export function slotRoles(map: { dataRoles: readonly number[]; pRole: number; qRole: number }): number[] {
  return map.qRole >= 0 ? [...map.dataRoles, map.pRole, map.qRole] : [...map.dataRoles, map.pRole];
}
