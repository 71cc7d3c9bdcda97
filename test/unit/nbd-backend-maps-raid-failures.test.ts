// Proves the array backend, not the NBD server, turns jraid's expected I/O failures (E_BAD_BLOCK,
// E_ARRAY_FAILED) into NBD errors, on READ, WRITE at every level (fast: at the next FLUSH) and
// FLUSH; other failures pass through unmarked, so the server logs them as unexpected.
import { describe, expect, it } from 'vitest';
import { ArrayBackend, NBD_ERROR_FOR_CODE, TOUGHNESS_LEVELS } from '../../src/daemon/array-backend.js';
import { nbdErrorForFailure } from '../../src/daemon/nbd-server.js';
import { NBD_EIO } from '../../src/daemon/nbd-protocol.js';
import type { RaidArray } from '../../src/engine/raid-array.js';
import { JraidError, type ErrorCode } from '../../src/errors.js';

/** An array whose every call fails with `code`. */
function failingArray(code: ErrorCode) {
  const fail = async (): Promise<never> => { throw new JraidError(code, `simulated ${code}`); };
  return { sizeBytes: 1 << 20, read: fail, write: fail, flush: fail } as unknown as RaidArray;
}

async function failureOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('array backend maps RAID failures to NBD errors', () => {
  it('names E_BAD_BLOCK and E_ARRAY_FAILED', () => {
    expect([...NBD_ERROR_FOR_CODE.keys()].sort()).toEqual(['E_ARRAY_FAILED', 'E_BAD_BLOCK']);
  });

  for (const [code, nbdError] of NBD_ERROR_FOR_CODE) {
    for (const toughness of TOUGHNESS_LEVELS) {
      it(`${code} (${toughness}): READ, WRITE and FLUSH fail with NBD error ${nbdError}, as expected failures`, async () => {
        const backend = new ArrayBackend(failingArray(code), toughness);
        const failures = [
          await failureOf(() => backend.read(0, 4096)),
          // A fast write replies before it fails: its failure comes with the next FLUSH.
          toughness === 'fast' ? await backend.write(0, Buffer.alloc(4096), { fua: false }).then(() => failureOf(() => backend.flush())) : await failureOf(() => backend.write(0, Buffer.alloc(4096), { fua: false })),
          await failureOf(() => backend.flush()),
        ];
        for (const failure of failures) {
          expect((failure as JraidError).code).toBe(code);
          expect(nbdErrorForFailure(failure)).toEqual({ error: nbdError, expected: true });
        }
      });
    }
  }

  it('another failure passes through unmarked: the server reports it as unexpected', async () => {
    const backend = new ArrayBackend(failingArray('E_CONFIG'), 'durable');
    const failure = await failureOf(() => backend.read(0, 4096));
    expect(nbdErrorForFailure(failure)).toEqual({ error: NBD_EIO, expected: false });
  });
});
