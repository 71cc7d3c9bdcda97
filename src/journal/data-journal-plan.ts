// Recovery of one update after an unscheduled stop (journal policy, seed 002 claims 12-13), as a
// decision table: the data manager's and each parity manager's journal state in, the rule out.
//
// The journals are reviewed per update. A manager's state is what its entries prove, each entry
// counted only when its payload checks: data side none / issued (new data at its new address)
// / completed; parity side none / received (the delta) / completed (the new parity at its new
// address); `lost` when the member is gone, and `absent` for Q on RAID-4/5.
//
// The in-place copies are rewritten only after every side completed, so whenever an update is
// rolled back they still hold the old contents. Rolled forward, the new data comes from the
// data manager's journal (c2) or from the parity change and the old data (c3), and the new
// parity from the row. Beyond the seed's rows: a lost data member with a parity manager holding
// the delta rolls forward (that is what lets an `atomic` acknowledgement survive the data
// member's loss), and more members lost than the level survives is a failed array.

import { decide, type DecisionTable } from '../decision-table.js';

export type DataSideState = 'none' | 'issued' | 'completed' | 'lost';
export type ParitySideState = 'none' | 'received' | 'completed' | 'lost';
export type QSideState = ParitySideState | 'absent';

export interface UpdateFacts {
  data: DataSideState;
  p: ParitySideState;
  q: QSideState;
}

export type UpdateRule =
  /** c1a: no manager journaled the update: nothing to do. */
  | 'c1a-nothing-journaled'
  /** c1b: the write was issued (or only the parity side heard of it) and no side completed: no change. */
  | 'c1b-issued-only'
  /** c1c: write issued and parity update received, neither completed: no change. */
  | 'c1c-neither-completed'
  /** c1d: both completed. The seed switches metadata; here the journal copies are (re)applied in place. */
  | 'c1d-both-completed'
  /** c2: data completed, a parity side did not: new parity rebuilt from old and new data. */
  | 'c2-parity-from-data'
  /** c3: a parity side completed, data did not: new data rebuilt from the parity change. */
  | 'c3-data-from-parity'
  /** The data member is lost; a parity manager holds the delta: new data rebuilt from it. */
  | 'lost-data-from-parity'
  /** The data member is lost and no parity manager heard of the update: no change. */
  | 'lost-data-nothing-received'
  /** More members lost than the level survives. */
  | 'failed';

export type UpdateAction = 'no-change' | 'roll-forward' | 'failed';

export interface UpdateDecision {
  rule: UpdateRule;
  action: UpdateAction;
}

const forward = (rule: UpdateRule): UpdateDecision => ({ rule, action: 'roll-forward' });
const noChange = (rule: UpdateRule): UpdateDecision => ({ rule, action: 'no-change' });

const NOT_DONE_P = ['none', 'received'] as const;
const NOT_DONE_Q = ['none', 'received'] as const;
const DONE_OR_GONE_P = ['completed', 'lost'] as const;
const DONE_OR_GONE_Q = ['completed', 'lost', 'absent'] as const;
const EARLY = ['none', 'issued'] as const;

export const UPDATE_RECOVERY: DecisionTable<UpdateFacts, UpdateDecision> = {
  name: 'journal policy update recovery',
  domains: {
    data: ['none', 'issued', 'completed', 'lost'],
    p: ['none', 'received', 'completed', 'lost'],
    q: ['absent', 'none', 'received', 'completed', 'lost'],
  },
  rows: [
    // Too many members lost: RAID-4/5 without data and P, RAID-6 without all three.
    { when: { data: 'lost', p: 'lost', q: ['absent', 'lost'] }, then: { rule: 'failed', action: 'failed' } },
    // Data completed.
    { when: { data: 'completed', p: DONE_OR_GONE_P, q: DONE_OR_GONE_Q }, then: forward('c1d-both-completed') },
    { when: { data: 'completed', p: NOT_DONE_P }, then: forward('c2-parity-from-data') },
    { when: { data: 'completed', p: DONE_OR_GONE_P, q: NOT_DONE_Q }, then: forward('c2-parity-from-data') },
    // Data not completed, a parity side completed.
    { when: { data: EARLY, p: 'completed' }, then: forward('c3-data-from-parity') },
    { when: { data: EARLY, p: ['none', 'received', 'lost'], q: 'completed' }, then: forward('c3-data-from-parity') },
    // Data not completed, no parity side completed.
    { when: { data: 'none', p: ['none', 'lost'], q: ['none', 'lost', 'absent'] }, then: noChange('c1a-nothing-journaled') },
    { when: { data: 'none', p: 'received', q: ['none', 'received', 'lost', 'absent'] }, then: noChange('c1b-issued-only') },
    { when: { data: 'none', p: ['none', 'lost'], q: 'received' }, then: noChange('c1b-issued-only') },
    { when: { data: 'issued', p: ['none', 'lost'], q: ['none', 'lost', 'absent'] }, then: noChange('c1b-issued-only') },
    { when: { data: 'issued', p: 'received', q: ['none', 'received', 'lost', 'absent'] }, then: noChange('c1c-neither-completed') },
    { when: { data: 'issued', p: ['none', 'lost'], q: 'received' }, then: noChange('c1c-neither-completed') },
    // The data member is lost.
    { when: { data: 'lost', p: ['received', 'completed'] }, then: forward('lost-data-from-parity') },
    { when: { data: 'lost', p: ['none', 'lost'], q: ['received', 'completed'] }, then: forward('lost-data-from-parity') },
    { when: { data: 'lost', p: 'none', q: ['none', 'lost', 'absent'] }, then: noChange('lost-data-nothing-received') },
    { when: { data: 'lost', p: 'lost', q: 'none' }, then: noChange('lost-data-nothing-received') },
  ],
};

export function decideUpdate(facts: UpdateFacts): UpdateDecision {
  return decide(UPDATE_RECOVERY, facts);
}
