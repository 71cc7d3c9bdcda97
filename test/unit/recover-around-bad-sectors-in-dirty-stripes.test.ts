// Proves: recovery of a dirty stripe in which a member has latent bad sectors works row by row: a
// bad block in a row nothing was writing is rebuilt from parity and rewritten (repaired); one in
// a row being written at the crash cannot be rebuilt from parity that may be mid-update, so it is
// recorded bad (EIO, never garbage), zeroed and parity made to match: the stripe is consistent
// and scrub finds nothing. Found by the fault simulation (RAID-5 seed 53).
import { describe, expect, it } from 'vitest';
import { DATA_OFFSET_BYTES } from '../../src/format/layout.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { BLOCK_SIZE_BYTES } from '../../src/units.js';
import { assembleNow, driveUntil, scriptedArray } from '../helpers/sim-script.js';

describe('recovery around latent bad sectors', () => {
  for (const level of [5, 6] as const) {
    it(`RAID-${level}`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const chunk = 4 * BLOCK_SIZE_BYTES;
      const { world, devices, content } = await scriptedArray({ level, raidDevices, chunkSizeBytes: chunk, stripes: 8 });
      const { array } = await assembleNow(world, devices, { journal: { idleCleanMs: 0, cleanBatchStripes: 64 } });
      const g = array.geometry;
      world.instant = false;
      // Row 1 of data chunk 0 in stripe 2 is written; its parity write never completes; the process dies.
      const stripe = 2;
      const map = g.stripeMap(stripe);
      const at = stripe * g.stripeDataBytes + BLOCK_SIZE_BYTES;
      const parityDevice = devices[array.memberIndexForRole(map.pRole)]!;
      const memberOffset = (row: number) => DATA_OFFSET_BYTES + g.memberDataOffsetBytes(stripe, row * BLOCK_SIZE_BYTES);
      void array.write(at, Buffer.alloc(BLOCK_SIZE_BYTES, 0x5a)).catch(() => {});
      await driveUntil(world, () => false, (io) => !(io.device === parityDevice && io.kind === 'write' && io.offsetBytes === memberOffset(1)));
      const crashed = devices.map((device) => device.crashImage(world, 'keep-all'));
      // Data chunk 1 of that stripe has bad sectors in row 1 (being written) and row 3 (quiet).
      const holder = crashed[array.memberIndexForRole(map.dataRoles[1]!)]!;
      holder.latentBad.add(memberOffset(1) / BLOCK_SIZE_BYTES);
      holder.latentBad.add(memberOffset(3) / BLOCK_SIZE_BYTES);
      world.instant = true;

      const { array: recovered, report } = await assembleNow(world, crashed);
      const outcome = report.recovery as { unreadableBlocks: { firstBlock: number }[]; stripes: number[] };
      expect(outcome.stripes).toContain(stripe);
      const blockOf = (dataIndex: number, row: number) => (stripe * g.stripeDataBytes + dataIndex * chunk) / BLOCK_SIZE_BYTES + row;
      expect(outcome.unreadableBlocks.map((range) => range.firstBlock)).toEqual([blockOf(1, 1)]);
      await expect(recovered.read(blockOf(1, 1) * BLOCK_SIZE_BYTES, BLOCK_SIZE_BYTES)).rejects.toMatchObject({ code: 'E_BAD_BLOCK' });
      const quiet = blockOf(1, 3) * BLOCK_SIZE_BYTES;
      expect((await recovered.read(quiet, BLOCK_SIZE_BYTES)).equals(content.subarray(quiet, quiet + BLOCK_SIZE_BYTES))).toBe(true);
      expect(holder.latentBad.size).toBe(0); // both sectors were rewritten
      const scrub = await scrubArray(recovered, { restart: true });
      expect(scrub.mismatches).toEqual([]);
    });
  }
});
