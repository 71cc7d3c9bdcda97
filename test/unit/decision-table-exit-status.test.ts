// Proves the exit status of a result is one table: every combination of degraded and problems
// found matches exactly one row, 0 only when the array is whole and nothing was found, and
// "degraded" (isDegraded) agrees with the array's own degraded roles as members fail.
import { describe, expect, it } from 'vitest';
import { allCombinations, matchingRows } from '../../src/decision-table.js';
import { EXIT_STATUS, exitCodeFor, exitCodeForState, isDegraded } from '../../src/app/result-status.js';
import type { ArrayState } from '../../src/engine/raid-array.js';
import { EXIT_DEGRADED, EXIT_OK } from '../../src/errors.js';
import { makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';

const STATES: ArrayState[] = ['clean', 'active', 'degraded', 'failed'];

describe('exit-status table', () => {
  const combinations = allCombinations(EXIT_STATUS.domains);

  it('every combination matches exactly one row, and every row is used', () => {
    expect(combinations).toHaveLength(4);
    const used = new Set<number>();
    for (const facts of combinations) {
      const rows = matchingRows(EXIT_STATUS, facts);
      expect(rows, JSON.stringify(facts)).toHaveLength(1);
      used.add(EXIT_STATUS.rows.indexOf(rows[0]!));
    }
    expect(used.size).toBe(EXIT_STATUS.rows.length);
  });

  it('0 only for a whole array with nothing found; otherwise 3, for every array state', () => {
    for (const state of STATES) {
      for (const problemsFound of [false, true]) {
        const code = exitCodeForState(state, problemsFound);
        expect(code, `${state} ${problemsFound}`).toBe(!isDegraded(state) && !problemsFound ? EXIT_OK : EXIT_DEGRADED);
        expect(code).toBe(exitCodeFor({ degraded: isDegraded(state), problemsFound }));
      }
    }
    expect(STATES.filter(isDegraded)).toEqual(['degraded', 'failed']);
  });

  it('isDegraded(state) agrees with the array having degraded roles, as members fail one by one', async () => {
    const devices = await makeMemoryMembers({ level: 5, raidDevices: 4 });
    const array = await openMemoryArray(devices);
    const seen: ArrayState[] = [];
    for (let failed = 0; failed <= 2; failed++) {
      if (failed > 0) await array.failMember(array.memberIndexForRole(failed - 1), 'test').catch(() => {});
      seen.push(array.state());
      expect(isDegraded(array.state()), `${failed} failed`).toBe(array.degradedRoles().length > 0);
    }
    expect(seen.slice(1)).toEqual(['degraded', 'failed']);
    await array.close().catch(() => {});
  });
});
