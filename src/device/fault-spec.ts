// The fault-injection spec for drills and tests (JRAID_FAULTS, jraid(8) ENVIRONMENT), parsed and
// checked before any member opens: a JSON array of objects naming a member path and its faults.
// Anything else (bad JSON, an unknown field, a value of the wrong kind) is E_USAGE naming the
// variable and the entry, never a fault plan half understood.
//   JRAID_FAULTS='[{"path":"/srv/b.img","badReadRanges":[[8388608,8392704]],"seed":1}]'

import { JraidError } from '../errors.js';
import type { FaultPlan } from './fault-device.js';

export const FAULTS_ENV = 'JRAID_FAULTS';

export interface FaultSpec extends FaultPlan {
  path: string;
}

type FieldCheck = (value: unknown) => string | undefined;

const nonNegativeInteger: FieldCheck = (value) => Number.isSafeInteger(value) && (value as number) >= 0 ? undefined : 'a whole number >= 0';
const probability: FieldCheck = (value) => typeof value === 'number' && value >= 0 && value <= 1 ? undefined : 'a number from 0 to 1';
const ranges: FieldCheck = (value) => Array.isArray(value) && value.every((range) => Array.isArray(range) && range.length === 2
  && Number.isSafeInteger(range[0]) && Number.isSafeInteger(range[1]) && range[0] >= 0 && range[0] < range[1])
  ? undefined : 'a list of [start, end] byte offsets with 0 <= start < end';

/** Every field a spec may have, and what its value must be. */
const FIELDS: Readonly<Record<keyof FaultSpec, FieldCheck>> = {
  path: (value) => typeof value === 'string' && value.length > 0 ? undefined : 'a member path',
  seed: nonNegativeInteger,
  readErrorRate: probability,
  writeErrorRate: probability,
  badReadRanges: ranges,
  failWritesAfter: nonNegativeInteger,
  latencyMs: (value) => typeof value === 'number' && Number.isFinite(value) && value >= 0 ? undefined : 'a number of milliseconds >= 0',
};

function usage(what: string): JraidError {
  return new JraidError('E_USAGE', `${FAULTS_ENV}: ${what}`, {
    hint: `${FAULTS_ENV} is a JSON array of {"path", ${Object.keys(FIELDS).filter((key) => key !== 'path').map((key) => `"${key}"`).join(', ')}} objects; see jraid(8), ENVIRONMENT`,
  });
}

/** Parses and checks a JRAID_FAULTS value; empty or undefined means no faults. */
export function parseFaultSpecs(text: string | undefined): FaultSpec[] {
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw usage(`not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw usage('must be a JSON array of objects');
  return parsed.map((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw usage(`entry ${i} is not an object`);
    const fields = entry as Record<string, unknown>;
    if (!('path' in fields)) throw usage(`entry ${i} has no "path"`);
    for (const [key, value] of Object.entries(fields)) {
      const check = (FIELDS as Record<string, FieldCheck>)[key];
      if (!check) throw usage(`entry ${i} has an unknown field "${key}"`);
      const problem = check(value);
      if (problem) throw usage(`entry ${i}: "${key}" must be ${problem}, not ${JSON.stringify(value)}`);
    }
    return fields as unknown as FaultSpec;
  });
}
