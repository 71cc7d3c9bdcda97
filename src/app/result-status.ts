// What a command's result means for its exit status, decided once for every command (detail,
// assemble, write, read, fail-disk, add, remove, rebuild, re-add, scrub, recover), whether it
// ran here or in a daemon: a table over whether the array is degraded and whether the command
// found problems (blocks recorded bad, parity mismatches).

import { decide, type DecisionTable } from '../decision-table.js';
import type { ArrayState } from '../engine/raid-array.js';
import { EXIT_DEGRADED, EXIT_OK } from '../errors.js';

/** Degraded: a role is lost or still being rebuilt (failed is degraded past what parity covers). */
export function isDegraded(state: ArrayState): boolean {
  return state === 'degraded' || state === 'failed';
}

export interface ResultFacts {
  /** The array is degraded once the command is done (isDegraded). */
  degraded: boolean;
  /** The command found problems in the data: blocks recorded bad, parity mismatches. */
  problemsFound: boolean;
}

export const EXIT_STATUS: DecisionTable<ResultFacts, number> = {
  name: 'exit status of a result',
  domains: { degraded: [false, true], problemsFound: [false, true] },
  rows: [
    { when: { degraded: false, problemsFound: false }, then: EXIT_OK },
    // The command did its work, but the array needs attention: scripts branch on 3.
    { when: { degraded: true }, then: EXIT_DEGRADED },
    { when: { degraded: false, problemsFound: true }, then: EXIT_DEGRADED },
  ],
};

export function exitCodeFor(result: { degraded: boolean; problemsFound?: boolean }): number {
  return decide(EXIT_STATUS, { degraded: result.degraded, problemsFound: result.problemsFound ?? false });
}

/** The exit status for a result that carries the array's state (detail, assemble, write, read). */
export function exitCodeForState(state: ArrayState, problemsFound = false): number {
  return exitCodeFor({ degraded: isDegraded(state), problemsFound });
}
