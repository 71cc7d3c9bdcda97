// Proves the journal policy's update-recovery table: every combination of the data manager's, P
// manager's and Q manager's journal states matches exactly one row, every row is used, and the
// row chosen is the one seed 002's rules (c1)-(c3) name, read here from the claim's own words.
import { describe, expect, it } from 'vitest';
import { allCombinations, matchingRows } from '../../src/decision-table.js';
import { UPDATE_RECOVERY, type UpdateFacts, type UpdateRule } from '../../src/journal/data-journal-plan.js';

/** The claim's rules, written independently of the table's rows. */
function expectedRule(f: UpdateFacts): UpdateRule {
  const parities = f.q === 'absent' ? [f.p] : [f.p, f.q];
  const survives = f.q === 'absent' ? 1 : 2;
  const lost = [f.data, ...parities].filter((state) => state === 'lost').length;
  if (lost > survives) return 'failed';
  const anyCompleted = parities.some((state) => state === 'completed');
  const anyReceived = parities.some((state) => state === 'received' || state === 'completed');
  const allDoneOrGone = parities.every((state) => state === 'completed' || state === 'lost');
  if (f.data === 'lost') return anyReceived ? 'lost-data-from-parity' : 'lost-data-nothing-received';
  if (f.data === 'completed') return allDoneOrGone ? 'c1d-both-completed' : 'c2-parity-from-data';
  // Data side not completed.
  if (anyCompleted) return 'c3-data-from-parity';
  if (f.data === 'none') return anyReceived ? 'c1b-issued-only' : 'c1a-nothing-journaled';
  return anyReceived ? 'c1c-neither-completed' : 'c1b-issued-only';
}

describe('journal policy update-recovery table', () => {
  const combinations = allCombinations(UPDATE_RECOVERY.domains);

  it('walks every combination of the three managers\' states: exactly one row each, every row used', () => {
    expect(combinations).toHaveLength(4 * 4 * 5);
    const used = new Set<number>();
    for (const facts of combinations) {
      const rows = matchingRows(UPDATE_RECOVERY, facts);
      expect(rows, JSON.stringify(facts)).toHaveLength(1);
      used.add(UPDATE_RECOVERY.rows.indexOf(rows[0]!));
    }
    expect(used.size).toBe(UPDATE_RECOVERY.rows.length);
  });

  for (const facts of combinations) {
    it(`data ${facts.data}, P ${facts.p}, Q ${facts.q}: ${expectedRule(facts)}`, () => {
      const chosen = matchingRows(UPDATE_RECOVERY, facts)[0]!.then;
      expect(chosen.rule).toBe(expectedRule(facts));
      const forward = ['c1d-both-completed', 'c2-parity-from-data', 'c3-data-from-parity', 'lost-data-from-parity'];
      expect(chosen.action).toBe(chosen.rule === 'failed' ? 'failed' : forward.includes(chosen.rule) ? 'roll-forward' : 'no-change');
    });
  }

  it('the seed\'s own cases (RAID-5: data and P managers)', () => {
    const rule = (data: UpdateFacts['data'], p: UpdateFacts['p']) => matchingRows(UPDATE_RECOVERY, { data, p, q: 'absent' })[0]!.then.rule;
    expect(rule('none', 'none')).toBe('c1a-nothing-journaled'); // c1a
    expect(rule('issued', 'none')).toBe('c1b-issued-only'); // c1b
    expect(rule('issued', 'received')).toBe('c1c-neither-completed'); // c1c
    expect(rule('completed', 'completed')).toBe('c1d-both-completed'); // c1d
    expect(rule('completed', 'received')).toBe('c2-parity-from-data'); // c2
    expect(rule('issued', 'completed')).toBe('c3-data-from-parity'); // c3
  });
});
