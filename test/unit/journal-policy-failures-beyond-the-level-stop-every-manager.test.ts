// Proves the journal policy's stop (seed 002 claim 4): with proxies serving as many failed members
// as the level survives, one more failure mid-write stops every manager (writes refused); at
// restart recovery reviews the journals and every acknowledged write reads back, every other
// block old or new, with no EIO.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { FaultDevice } from '../../src/device/fault-device.js';
import type { Level } from '../../src/format/types.js';
import { JraidError } from '../../src/errors.js';
import { Rng } from '../../src/rng.js';
import { BLOCK_SIZE_BYTES } from '../../src/units.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

const STREAMS = 6;

describe('journal policy: failures beyond the level stop every manager', () => {
  for (const [level, raidDevices] of [[5, 4], [6, 5]] as [Level, number][]) {
    it(`RAID-${level}: one failure more than the level mid-write; restart recovers every acknowledged write`, async () => {
      const memories = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 16 * 1024, policy: 'journal' });
      const faults = memories.map((memory) => new FaultDevice(memory));
      const { array } = await assembleDevices(faults, {});
      const before = await array.read(0, array.sizeBytes);
      const shadow = Buffer.from(before);
      const parity = array.geometry.parityDisks;
      const rng = new Rng(level * 13);
      const sliceBytes = Math.floor(array.sizeBytes / STREAMS);
      /** Writes refused or cut off by the stop: their blocks may read old or new. */
      const unacked: { offset: number; data: Buffer; old: Buffer }[] = [];
      let acks = 0;
      let vanished = 0;
      await Promise.all(Array.from({ length: STREAMS }, async (_, stream) => {
        for (;;) {
          const length = 1 + rng.int(40_000);
          const offset = stream * sliceBytes + rng.int(sliceBytes - length);
          const data = rng.bytes(length);
          const old = Buffer.from(shadow.subarray(offset, offset + length));
          try {
            await array.write(offset, data);
          } catch (error) {
            expect(error).toBeInstanceOf(JraidError);
            // Refused: the array failed, or (the last member not yet failed) a stripe's old rows cannot be read.
            expect(['E_ARRAY_FAILED', 'E_IO']).toContain((error as JraidError).code);
            unacked.push({ offset, data, old });
            return;
          }
          data.copy(shadow, offset);
          acks++;
          // Members vanish one by one (every 10 acknowledgements), one more than the level survives.
          if (vanished <= parity && acks >= 10 * (vanished + 1)) faults[vanished++]!.dead = true;
        }
      }));
      expect(vanished).toBe(parity + 1);
      expect(array.journalProxies.length).toBeGreaterThan(parity);
      await expect(array.write(0, Buffer.alloc(10))).rejects.toMatchObject({ code: 'E_ARRAY_FAILED' });
      await array.abandon();

      // Restart with the members back (the last to fail taken back by force): recovery reviews the journals.
      const { array: back } = await assembleDevices(memories, { force: true });
      const now = await back.read(0, back.sizeBytes); // no EIO
      const inUnacked = new Uint8Array(back.sizeBytes / BLOCK_SIZE_BYTES);
      for (const { offset, data, old } of unacked) {
        // Each block of a write cut off reads entirely old or entirely new.
        for (let at = offset; at < offset + data.length; at = (Math.floor(at / BLOCK_SIZE_BYTES) + 1) * BLOCK_SIZE_BYTES) {
          const end = Math.min(offset + data.length, (Math.floor(at / BLOCK_SIZE_BYTES) + 1) * BLOCK_SIZE_BYTES);
          const got = now.subarray(at, end);
          expect(got.equals(data.subarray(at - offset, end - offset)) || got.equals(old.subarray(at - offset, end - offset)), `block at ${at} old or new`).toBe(true);
          inUnacked[Math.floor(at / BLOCK_SIZE_BYTES)] = 1;
        }
      }
      // Everything else is what the acknowledged writes left.
      for (let block = 0; block < inUnacked.length; block++) {
        if (inUnacked[block]) continue;
        const at = block * BLOCK_SIZE_BYTES;
        if (!now.subarray(at, at + BLOCK_SIZE_BYTES).equals(shadow.subarray(at, at + BLOCK_SIZE_BYTES))) expect.fail(`block ${block} lost an acknowledged write`);
      }
      await back.close();
    });
  }
});
