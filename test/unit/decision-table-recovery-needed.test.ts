// Proves the recovery-needed table: every combination of policy, journal state (the dirty-log
// record, or the journal policy's live updates), dirty flag and resync progress matches exactly one row, recoveryNeeded reads each from an array's state, and
// no state that may hide an inconsistency is ever judged to need nothing.
import { describe, expect, it } from 'vitest';
import { allCombinations, matchingRows } from '../../src/decision-table.js';
import { RECOVERY_ACTIONS, recoveryNeeded, type RecoveryFacts } from '../../src/journal/recovery-plan.js';
import { FLAG_DIRTY } from '../../src/format/superblock.js';
import type { JournalRecord } from '../../src/format/journal-record.js';

const DATA_SIZE_BYTES = 1 << 20;

/** An array's state showing exactly `facts`. */
function arrayShowing(facts: RecoveryFacts) {
  const record: JournalRecord | undefined = facts.journal === 'none' ? undefined
    : { arrayUuid: Buffer.alloc(16), generation: 5, clean: facts.journal === 'clean', entries: facts.journal === 'dirty' ? [{ volumeId: 1, stripe: 3, checks: [] }] : [] };
  return {
    sb: { policy: facts.policy, flags: facts.dirtyFlag ? FLAG_DIRTY : 0, resyncOffsetBytes: facts.resyncIncomplete ? 4096 : DATA_SIZE_BYTES, dataSizeBytes: DATA_SIZE_BYTES },
    journalRecord: facts.policy === 'journal' ? undefined : record,
    dataJournalLive: facts.policy !== 'journal' || facts.journal === 'none' ? undefined : facts.journal === 'dirty' ? 2 : 0,
  };
}

describe('recovery-needed table', () => {
  const combinations = allCombinations(RECOVERY_ACTIONS.domains);

  it('every combination matches exactly one row, and every row is used', () => {
    expect(combinations).toHaveLength(3 * 3 * 2 * 2);
    const used = new Set<number>();
    for (const facts of combinations) {
      const rows = matchingRows(RECOVERY_ACTIONS, facts);
      expect(rows, JSON.stringify(facts)).toHaveLength(1);
      used.add(RECOVERY_ACTIONS.rows.indexOf(rows[0]!));
    }
    expect(used.size).toBe(RECOVERY_ACTIONS.rows.length);
  });

  it('recoveryNeeded gives the row action for an array in each state', () => {
    for (const facts of combinations) {
      expect(recoveryNeeded(arrayShowing(facts)), JSON.stringify(facts)).toBe(matchingRows(RECOVERY_ACTIONS, facts)[0]!.then);
    }
  });

  it('a dirty journal (dirty-log, or the journal policy\'s live updates), a dirty flag (no journal) or an unfinished resync always needs recovery', () => {
    for (const facts of combinations) {
      const action = recoveryNeeded(arrayShowing(facts));
      if (facts.policy === 'dirty-log' && facts.journal === 'dirty') expect(action).toBe('dirty-stripes');
      if (facts.policy === 'journal' && facts.journal === 'dirty') expect(action).toBe('data-journal');
      else if (facts.policy !== 'dirty-log' && facts.dirtyFlag) expect(action).toBe('full-resync');
      if (facts.resyncIncomplete) expect(action).not.toBe('none');
    }
  });
});
