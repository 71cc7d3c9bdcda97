// The seeded mutation fuzz shared by the on-disk codec tests: mutate a valid encoding, decode
// it, and hold the decoder to four properties. Every iteration has its own seed, so a failure
// names the one iteration to replay (JRAID_FUZZ_SEED, JRAID_FUZZ_ITERATIONS).

import { isDeepStrictEqual } from 'node:util';
import { expect } from 'vitest';
import type { DecodeResult } from '../../src/format/codec.js';
import { Rng } from '../../src/rng.js';

export interface FuzzField {
  at: number;
  width: 1 | 2 | 4 | 8;
}

export interface CodecFuzzTarget<T> {
  /** Valid encodings to mutate, each as the decoder is given it (with any padding after it). */
  bases: readonly Buffer[];
  /** Where the documented integer fields of a base lie: mutations aimed here reach the validation rules. */
  fieldsOf(base: Buffer): readonly FuzzField[];
  decode(bytes: Buffer): DecodeResult<T>;
  encode(value: T): Buffer;
  /** Rewrites the checksum over what the (mutated) header now claims, when the bytes allow it. */
  fixChecksum(bytes: Buffer): void;
  /** How many leading bytes of a base its checksum covers: unfixed damage there must be caught. */
  checkedBytes(base: Buffer): number;
  /**
   * The byte ranges [start, end) of an accepted input that carry its value (not reserved, not
   * padding, not the checksum): its re-encoding must reproduce them exactly.
   */
  meaningfulRanges(accepted: Buffer): [number, number][];
  /** Mutations particular to the format (names, inserted entries), beside the generic ones. */
  extraMutations?: readonly ((rng: Rng, bytes: Buffer) => Buffer)[];
}

export interface FuzzSettings {
  seed: number;
  iterations: number;
}

/** The run's seed and length: the defaults keep `npm test` quick; the environment can replay or go long. */
export function fuzzSettings(defaultSeed: number, defaultIterations: number): FuzzSettings {
  return {
    seed: Number(process.env.JRAID_FUZZ_SEED ?? defaultSeed),
    iterations: Number(process.env.JRAID_FUZZ_ITERATIONS ?? defaultIterations),
  };
}

export interface FuzzOutcome {
  accepted: number;
  rejected: number;
  /** Each rejection reason with its numbers replaced by N, and how often it was given. */
  reasons: Map<string, number>;
}

const INTERESTING = [
  0n, 1n, 2n, 3n, 4n, 6n, 7n, 15n, 16n, 17n, 64n, 65n, 0xffn, 0x100n, 0xffffn, 4096n, 65536n,
  2n ** 32n - 1n, 2n ** 41n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n,
];

export function writeField(bytes: Buffer, field: FuzzField, value: bigint): void {
  const masked = value & ((1n << BigInt(field.width * 8)) - 1n);
  for (let i = 0; i < field.width && field.at + i < bytes.length; i++) bytes[field.at + i] = Number((masked >> BigInt(8 * i)) & 0xffn);
}

function mutate<T>(rng: Rng, target: CodecFuzzTarget<T>, original: Buffer): Buffer {
  let bytes = Buffer.from(original);
  const hotBytes = Math.max(1, target.checkedBytes(original));
  const extras = target.extraMutations ?? [];
  const mutations = 1 + rng.int(6);
  for (let m = 0; m < mutations; m++) {
    if (bytes.length === 0) break;
    switch (rng.int(7 + extras.length)) {
      case 0:
        bytes[rng.int(bytes.length)] = rng.int(256);
        break;
      case 1:
        bytes[rng.int(bytes.length)]! ^= 1 << rng.int(8);
        break;
      case 2:
        bytes[rng.int(Math.min(hotBytes, bytes.length))] = rng.int(256);
        break;
      case 3:
      case 4: {
        const fields = target.fieldsOf(original);
        if (fields.length === 0) break;
        const value = rng.next() < 0.7 ? rng.pick(INTERESTING) : BigInt(rng.int(2 ** 32)) << BigInt(rng.int(33));
        writeField(bytes, rng.pick(fields), value);
        break;
      }
      case 5: {
        const at = rng.int(Math.min(hotBytes, bytes.length));
        bytes.fill(rng.pick([0, 0xff]), at, Math.min(bytes.length, at + 1 + rng.int(64)));
        break;
      }
      case 6:
        if (rng.next() < 0.15) bytes = bytes.subarray(0, rng.int(Math.min(bytes.length, hotBytes + 16) + 1));
        break;
      default:
        bytes = extras[rng.int(extras.length)]!(rng, bytes);
    }
  }
  return bytes;
}

/** Each iteration has its own generator, so one failing iteration replays alone; seeds far apart share none. */
export function iterationSeed(seed: number, iteration: number): number {
  return (Math.imul(seed, 0x9e3779b1) + iteration) >>> 0;
}

/** Every number in a decoded value: the codecs hold only counts, offsets, ids and CRCs. */
function unsafeNumber(value: unknown, path: string): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? undefined : `${path} = ${value}`;
  if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const problem = unsafeNumber(item, `${path}.${key}`);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Runs the fuzz and checks, for every iteration: the decoder never throws; damage it accepts
 * without a fixed checksum is none (the checked bytes are the original's); an accepted value
 * holds only safe non-negative integers, re-encodes, and its re-encoding decodes to the same
 * value and reproduces every meaningful byte of the input (nothing is silently dropped or
 * rounded).
 */
export function runCodecFuzz<T>(name: string, target: CodecFuzzTarget<T>, settings: FuzzSettings): FuzzOutcome {
  const outcome: FuzzOutcome = { accepted: 0, rejected: 0, reasons: new Map() };
  for (let iteration = 0; iteration < settings.iterations; iteration++) {
    const rng = new Rng(iterationSeed(settings.seed, iteration));
    const original = rng.pick(target.bases);
    const bytes = mutate(rng, target, original);
    const checksumFixed = rng.next() < 0.5;
    if (checksumFixed) target.fixChecksum(bytes);
    const replay = `seed ${settings.seed} iteration ${iteration} (checksum ${checksumFixed ? 'fixed' : 'as mutated'})`;

    let result: DecodeResult<T>;
    try {
      result = target.decode(bytes);
    } catch (error) {
      throw new Error(`${name} decoder threw at ${replay}: ${(error as Error).message}`);
    }
    if (!result.ok) {
      outcome.rejected++;
      const reason = result.reason.replace(/0x[0-9a-f]+/g, '0xN').replace(/\d+/g, 'N');
      outcome.reasons.set(reason, (outcome.reasons.get(reason) ?? 0) + 1);
      continue;
    }
    outcome.accepted++;
    if (!checksumFixed) {
      const checked = target.checkedBytes(original);
      expect(bytes.length >= checked && bytes.subarray(0, checked).equals(original.subarray(0, checked)), `damage passed the checksum at ${replay}`).toBe(true);
    }
    const unsafe = unsafeNumber(result.value, 'value');
    if (unsafe) throw new Error(`${name} decoder accepted ${unsafe} at ${replay}`);
    let reencoded: Buffer;
    try {
      reencoded = target.encode(result.value);
    } catch (error) {
      throw new Error(`accepted ${name} does not re-encode at ${replay}: ${(error as Error).message}`);
    }
    const redecoded = target.decode(reencoded);
    // isDeepStrictEqual first: expect().toEqual on every accepted case would dominate the run time.
    if (!isDeepStrictEqual(redecoded, result)) expect(redecoded, `re-decode at ${replay}`).toEqual(result);
    for (const [start, end] of target.meaningfulRanges(bytes)) {
      if (!reencoded.subarray(start, end).equals(bytes.subarray(start, end))) {
        throw new Error(`${name} re-encoding differs in bytes ${start}..${end - 1} at ${replay}: `
          + `input ${bytes.subarray(start, end).toString('hex')}, re-encoded ${reencoded.subarray(start, end).toString('hex')}`);
      }
    }
  }
  return outcome;
}

/** The ranges [0, end) minus the `holes`, which may overlap and come in any order. */
export function rangesExcept(endBytes: number, holes: readonly [number, number][]): [number, number][] {
  const sorted = [...holes].sort((a, b) => a[0] - b[0]);
  const ranges: [number, number][] = [];
  let at = 0;
  for (const [start, end] of sorted) {
    if (start > at) ranges.push([at, Math.min(start, endBytes)]);
    at = Math.max(at, end);
  }
  if (at < endBytes) ranges.push([at, endBytes]);
  return ranges.filter(([start, end]) => end > start);
}
