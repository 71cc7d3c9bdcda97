// Proves: after a crash during a rebuild, a stripe the journal lists dirty that the rebuild had not
// reached cannot be trusted on the member being rebuilt (its chunk would be rebuilt from parity
// the crash left mid-update): assembly refuses the dirty degraded array, and forced recovery
// records that chunk bad; everything else reads back. Found by the fault simulation (RAID-5 seed 22).
import { describe, expect, it } from 'vitest';
import { DATA_OFFSET_BYTES } from '../../src/format/layout.js';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { isJraidError } from '../../src/errors.js';
import { assembleNow, driveUntil, scriptedArray } from '../helpers/sim-script.js';

describe('recovery during a rebuild', () => {
  for (const level of [5, 6] as const) {
    it(`RAID-${level}: the rebuilding member's chunk in a dirty stripe past the checkpoint is at risk`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const chunk = 4096;
      const { world, devices, content } = await scriptedArray({ level, raidDevices, spares: 1, chunkSizeBytes: chunk, stripes: 12 });
      const assembled = await assembleNow(world, devices, { journal: { idleCleanMs: 0, cleanBatchStripes: 64 } });
      const { array } = assembled;
      const g = array.geometry;
      world.instant = true;
      await failDisk(assembled, 'sim1', false);
      const [target] = await prepareRebuild(array, undefined);
      world.instant = false;
      void runRebuild(array, target!, { checkpointIntervalMs: 0 }).catch(() => {});
      expect(await driveUntil(world, () => array.sb.members[target!]!.recoveryOffsetBytes >= 3 * chunk)).toBe(true);

      // A write to a stripe not rebuilt yet where role 1 holds data, to a data chunk on another
      // role: its data lands, its parity write never completes, and the process dies.
      const stripe = [9, 10, 11].find((s) => g.stripeMap(s).dataRoles.includes(1))!;
      const map = g.stripeMap(stripe);
      const dataIndex = map.dataRoles.findIndex((role) => role !== 1);
      const at = stripe * g.stripeDataBytes + dataIndex * chunk;
      const parityDevice = devices[array.memberIndexForRole(map.pRole)]!;
      const parityOffset = DATA_OFFSET_BYTES + g.memberDataOffsetBytes(stripe, 0);
      void array.write(at, Buffer.alloc(chunk, 0xab)).catch(() => {});
      await driveUntil(world, () => false, (io) => !(io.device === parityDevice && io.kind === 'write' && io.offsetBytes === parityOffset));
      const crashed = devices.map((device) => device.crashImage(world, 'keep-all'));
      world.instant = true;

      const refused = await assembleNow(world, crashed).then(() => undefined, (error: unknown) => error);
      expect(isJraidError(refused, 'E_ARRAY_DIRTY')).toBe(true);
      expect((refused as { details: { stripes: number[] } }).details.stripes).toContain(stripe);

      const forced = await assembleNow(world, crashed, { forceRecovery: true });
      const lostAt = stripe * g.stripeDataBytes + map.dataRoles.indexOf(1) * chunk;
      await expect(forced.array.read(lostAt, chunk)).rejects.toMatchObject({ code: 'E_BAD_BLOCK' });
      // Everything outside that chunk and the unacknowledged write reads back.
      for (let offset = 0; offset < forced.array.sizeBytes; offset += chunk) {
        if (offset === lostAt || offset === at) continue;
        expect((await forced.array.read(offset, chunk)).equals(content.subarray(offset, offset + chunk)), `chunk at ${offset}`).toBe(true);
      }
    });
  }
});
