// Proves the re-add table: every combination of what the returning member's superblock and the
// write-intent bitmap say matches exactly one row, decideReAdd reads each from real states, and
// a partial rebuild is chosen only when every fact says the marks cover all it missed.
import { describe, expect, it } from 'vitest';
import { allCombinations, matchingRows } from '../../src/decision-table.js';
import { RE_ADD_MODES, decideReAdd, type ReAddFacts } from '../../src/engine/re-add-plan.js';
import type { Superblock } from '../../src/format/superblock.js';

const OWN_EVENTS = 40;

/** The member's own superblock and the bitmap's state showing exactly `facts`. */
function stateShowing(facts: ReAddFacts): { own: Superblock | undefined; intent: { tracking: boolean; startEvents: number } } {
  const own = facts.superblockReadable
    ? { thisIndex: 1, events: OWN_EVENTS, members: [{ state: 'active' }, { state: facts.wasInSync ? 'active' : 'rebuilding' }] } as unknown as Superblock
    : undefined;
  // Marks that began at most one event after the member's last cover its absence.
  const startEvents = facts.marksCoverItsAbsence ? OWN_EVENTS + 1 : OWN_EVENTS + 2;
  return { own, intent: { tracking: facts.intentTracking, startEvents } };
}

describe('re-add partial-or-full table', () => {
  const combinations = allCombinations(RE_ADD_MODES.domains);

  it('every combination matches exactly one row, and every row is used', () => {
    expect(combinations).toHaveLength(16);
    const used = new Set<number>();
    for (const facts of combinations) {
      const rows = matchingRows(RE_ADD_MODES, facts);
      expect(rows, JSON.stringify(facts)).toHaveLength(1);
      used.add(RE_ADD_MODES.rows.indexOf(rows[0]!));
    }
    expect(used.size).toBe(RE_ADD_MODES.rows.length);
  });

  it('decideReAdd gives the row decision for each state it can be in', () => {
    let reachable = 0;
    for (const facts of combinations) {
      // Without its superblock nothing else about the member is known: those facts read false.
      if (!facts.superblockReadable && (facts.wasInSync || facts.marksCoverItsAbsence)) continue;
      reachable++;
      const { own, intent } = stateShowing(facts);
      expect(decideReAdd(own, intent), JSON.stringify(facts)).toEqual(matchingRows(RE_ADD_MODES, facts)[0]!.then);
    }
    expect(reachable).toBe(10);
  });

  it('partial only when the superblock is read, it was in sync, marks are kept and they cover its absence', () => {
    for (const facts of combinations) {
      const { mode } = matchingRows(RE_ADD_MODES, facts)[0]!.then;
      const covered = facts.superblockReadable && facts.wasInSync && facts.intentTracking && facts.marksCoverItsAbsence;
      expect(mode, JSON.stringify(facts)).toBe(covered ? 'partial' : 'full');
    }
  });
});
