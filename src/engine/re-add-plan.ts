// Whether a returning member is rebuilt in part (only the regions the write-intent bitmap marked
// while it was away) or in full: a decision table over what its own superblock and the bitmap
// say. Partial only when the marks are known to cover every write it missed.

import { decide, type DecisionTable } from '../decision-table.js';
import type { Superblock } from '../format/superblock.js';

export interface ReAddFacts {
  /** Its own superblock could be read. */
  superblockReadable: boolean;
  /** It was active (in sync) when it left, by its own superblock. */
  wasInSync: boolean;
  /** The array keeps write-intent marks (tracking started when a role was lost). */
  intentTracking: boolean;
  /** The marks began no later than one event after its own last event: they cover its absence. */
  marksCoverItsAbsence: boolean;
}

export type ReAddWhy = 'unreadable' | 'not-in-sync' | 'no-marks' | 'older-than-marks' | 'marks-cover';

export interface ReAddDecision {
  mode: 'partial' | 'full';
  why: ReAddWhy;
}

const BOOLEAN = [false, true] as const;

export const RE_ADD_MODES: DecisionTable<ReAddFacts, ReAddDecision> = {
  name: 're-add partial or full',
  domains: { superblockReadable: BOOLEAN, wasInSync: BOOLEAN, intentTracking: BOOLEAN, marksCoverItsAbsence: BOOLEAN },
  rows: [
    { when: { superblockReadable: false }, then: { mode: 'full', why: 'unreadable' } },
    { when: { superblockReadable: true, wasInSync: false }, then: { mode: 'full', why: 'not-in-sync' } },
    { when: { superblockReadable: true, wasInSync: true, intentTracking: false }, then: { mode: 'full', why: 'no-marks' } },
    { when: { superblockReadable: true, wasInSync: true, intentTracking: true, marksCoverItsAbsence: false }, then: { mode: 'full', why: 'older-than-marks' } },
    { when: { superblockReadable: true, wasInSync: true, intentTracking: true, marksCoverItsAbsence: true }, then: { mode: 'partial', why: 'marks-cover' } },
  ],
};

/** What the write-intent bitmap says, as the decision needs it. */
export interface IntentState {
  tracking: boolean;
  /** The events count when tracking began. */
  startEvents: number;
}

export function reAddFacts(own: Superblock | undefined, intent: IntentState): ReAddFacts {
  return {
    superblockReadable: own !== undefined,
    wasInSync: own?.members[own.thisIndex]?.state === 'active',
    // A cluster array's bitmap is written by every node from its own marks, each over the
    // others': it cannot be trusted to cover the member's absence, so re-add rebuilds in full.
    intentTracking: intent.tracking && !own?.clusterNodes,
    marksCoverItsAbsence: own !== undefined && own.events + 1 >= intent.startEvents,
  };
}

export function decideReAdd(own: Superblock | undefined, intent: IntentState): ReAddDecision {
  return decide(RE_ADD_MODES, reAddFacts(own, intent));
}
