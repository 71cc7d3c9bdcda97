// Proves decide() takes the one row that applies, and fails loudly (an assertion) when no row or
// more than one applies; allCombinations yields the whole product of the domains, once each.
import { describe, expect, it } from 'vitest';
import { allCombinations, decide, type DecisionTable } from '../../src/decision-table.js';

type Facts = { a: boolean; b: 'x' | 'y' | 'z' };
const domains = { a: [false, true], b: ['x', 'y', 'z'] } as const;

describe('decide', () => {
  it('takes the one row that applies, one-of values included', () => {
    const table: DecisionTable<Facts, string> = {
      name: 'sound', domains: { a: [...domains.a], b: [...domains.b] },
      rows: [{ when: { a: true }, then: 'A' }, { when: { a: false, b: ['x', 'y'] }, then: 'xy' }, { when: { a: false, b: 'z' }, then: 'z' }],
    };
    expect(allCombinations(table.domains).map((facts) => decide(table, facts))).toEqual(['xy', 'xy', 'z', 'A', 'A', 'A']);
  });

  it('asserts when no row applies, and when two do', () => {
    const gap: DecisionTable<Facts, string> = { name: 'gap', domains: { a: [false, true], b: ['x', 'y', 'z'] }, rows: [{ when: { a: true }, then: 'A' }] };
    expect(() => decide(gap, { a: false, b: 'x' })).toThrow(/assertion failed: gap: exactly one row applies .* \(found 0\)/);
    const overlap: DecisionTable<Facts, string> = { ...gap, name: 'overlap', rows: [{ when: { a: true }, then: 'A' }, { when: { b: 'x' }, then: 'X' }] };
    expect(() => decide(overlap, { a: true, b: 'x' })).toThrow(/overlap: exactly one row applies .* \(found 2\)/);
  });

  it('allCombinations is the product of the domains, each combination once', () => {
    const all = allCombinations<Facts>({ a: [false, true], b: ['x', 'y', 'z'] });
    expect(all).toHaveLength(6);
    expect(new Set(all.map((facts) => JSON.stringify(facts))).size).toBe(6);
  });
});
