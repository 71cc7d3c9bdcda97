// Proves: encodeWriteIntentHeader then decodeWriteIntentHeader returns an equal value for seeded random headers and for every field at its extremes.
import { describe, expect, it } from 'vitest';
import { decodeWriteIntentHeader, encodeWriteIntentHeader, type WriteIntentHeader } from '../../src/format/write-intent.js';
import { Rng } from '../../src/rng.js';

const SEED = Number(process.env.JRAID_FUZZ_SEED ?? 0x3171);
const HEADERS = 300;

function expectRoundTrip(header: WriteIntentHeader): void {
  const bytes = encodeWriteIntentHeader(header);
  expect(bytes.length).toBe(4096);
  const decoded = decodeWriteIntentHeader(bytes);
  expect(decoded).toEqual({ ok: true, value: header });
  if (decoded.ok) expect(encodeWriteIntentHeader(decoded.value).equals(bytes)).toBe(true);
}

describe('write-intent header round trip', () => {
  it(`${HEADERS} seeded random headers (seed ${SEED})`, () => {
    const rng = new Rng(SEED);
    for (let i = 0; i < HEADERS; i++) {
      const startEvents = rng.next() < 0.2 ? 0 : rng.int(2 ** 21) * 2 ** 32 + rng.int(2 ** 32);
      expectRoundTrip({ arrayUuid: rng.bytes(16), startEvents, chunkBytes: 2 ** (12 + rng.int(41)) });
    }
  });

  it('not tracking (start events 0), and start events 2^53 - 1', () => {
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 1), startEvents: 0, chunkBytes: 1024 * 1024 });
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 2), startEvents: Number.MAX_SAFE_INTEGER, chunkBytes: 1024 * 1024 });
  });

  it('the smallest chunk (4 KiB) and the largest below 2^53 (2^52)', () => {
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 3), startEvents: 7, chunkBytes: 4096 });
    expectRoundTrip({ arrayUuid: Buffer.alloc(16, 4), startEvents: 7, chunkBytes: 2 ** 52 });
  });
});
