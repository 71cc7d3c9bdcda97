// Decisions written as tables: each row names the facts it applies to and its outcome. A table
// is total and unambiguous when every combination of facts matches exactly one row; decide()
// asserts that for the facts it is given, and every table's test walks every combination
// (allCombinations) so a gap or an overlap fails there, not in the field.

import { assert } from './units.js';

/** A row's condition: each fact it names must equal the value (or one of the values) given. Unnamed facts match anything. */
export type Pattern<F> = { readonly [K in keyof F]?: F[K] | readonly F[K][] };

export interface Row<F, O> {
  readonly when: Pattern<F>;
  readonly then: O;
}

/** Every value each fact may take: the domain a table must cover. */
export type Domains<F> = { readonly [K in keyof F]: readonly F[K][] };

export interface DecisionTable<F, O> {
  readonly name: string;
  readonly domains: Domains<F>;
  readonly rows: readonly Row<F, O>[];
}

function matches<F>(pattern: Pattern<F>, facts: F): boolean {
  for (const key of Object.keys(pattern) as (keyof F)[]) {
    const wanted = pattern[key];
    const allowed = Array.isArray(wanted) ? (wanted as readonly unknown[]) : [wanted];
    if (!allowed.includes(facts[key])) return false;
  }
  return true;
}

/** The rows of `table` that apply to `facts` (exactly one in a sound table). */
export function matchingRows<F, O>(table: DecisionTable<F, O>, facts: F): Row<F, O>[] {
  return table.rows.filter((row) => matches(row.when, facts));
}

/** The outcome of the one row that applies to `facts`. */
export function decide<F, O>(table: DecisionTable<F, O>, facts: F): O {
  const rows = matchingRows(table, facts);
  // The message is built only on failure: decide() runs per block in recovery.
  if (rows.length !== 1) assert(false, `${table.name}: exactly one row applies to ${JSON.stringify(facts)} (found ${rows.length})`);
  return rows[0]!.then;
}

/** Every combination of the facts' values (the product of the domains). */
export function allCombinations<F>(domains: Domains<F>): F[] {
  let out: Record<string, unknown>[] = [{}];
  for (const key of Object.keys(domains)) {
    const values = (domains as Record<string, readonly unknown[]>)[key]!;
    assert(values.length > 0, `domain of ${key} is not empty`);
    out = out.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
  }
  return out as F[];
}
