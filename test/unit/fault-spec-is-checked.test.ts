// Proves: JRAID_FAULTS is checked before use: bad JSON, a non-array, an entry without a path, an
// unknown field or a value of the wrong kind is E_USAGE naming the variable; a good spec parses whole.
import { describe, expect, it } from 'vitest';
import { JraidError } from '../../src/errors.js';
import { FAULTS_ENV, parseFaultSpecs } from '../../src/device/fault-spec.js';

function usageError(text: string): JraidError {
  try {
    parseFaultSpecs(text);
  } catch (error) {
    expect(error).toBeInstanceOf(JraidError);
    return error as JraidError;
  }
  throw new Error(`expected ${text} to be refused`);
}

describe(`${FAULTS_ENV} spec`, () => {
  it('parses a full spec, and nothing for an empty variable', () => {
    const spec = [{ path: '/srv/b.img', badReadRanges: [[8, 16]], readErrorRate: 0.5, writeErrorRate: 0, failWritesAfter: 3, latencyMs: 1.5, seed: 7 }];
    expect(parseFaultSpecs(JSON.stringify(spec))).toEqual(spec);
    expect(parseFaultSpecs(undefined)).toEqual([]);
    expect(parseFaultSpecs('')).toEqual([]);
  });

  const refused: [string, string, RegExp][] = [
    ['bad JSON', '[{"path": ', /not valid JSON/],
    ['an object, not an array', '{"path": "/a"}', /must be a JSON array/],
    ['an entry that is not an object', '["/a"]', /entry 0 is not an object/],
    ['an entry without a path', '[{"seed": 1}]', /entry 0 has no "path"/],
    ['an unknown field (a typo)', '[{"path": "/a", "badReadRange": [[0, 8]]}]', /unknown field "badReadRange"/],
    ['a rate above 1', '[{"path": "/a", "readErrorRate": 2}]', /"readErrorRate" must be a number from 0 to 1/],
    ['a reversed range', '[{"path": "/a", "badReadRanges": [[16, 8]]}]', /"badReadRanges" must be/],
    ['a fractional count', '[{"path": "/a"}, {"path": "/b", "failWritesAfter": 1.5}]', /entry 1: "failWritesAfter"/],
    ['a string seed', '[{"path": "/a", "seed": "1"}]', /"seed" must be a whole number/],
  ];
  for (const [what, text, message] of refused) {
    it(`refuses ${what} with E_USAGE naming ${FAULTS_ENV}`, () => {
      const error = usageError(text);
      expect(error.code).toBe('E_USAGE');
      expect(error.message).toContain(FAULTS_ENV);
      expect(error.message).toMatch(message);
      expect(error.hint).toContain('jraid(8)');
    });
  }
});
