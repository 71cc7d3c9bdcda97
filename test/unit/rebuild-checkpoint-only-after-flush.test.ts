// Proves: a rebuild's recovery offset reaches the superblocks only once the chunks below it are
// flushed on the member being rebuilt: another state change mid-rebuild (here a superblock
// commit whose flush on that member never completes before power is lost) must not record
// progress the crash then takes back. Found by the fault simulation (RAID-6 seed 167).
import { describe, expect, it } from 'vitest';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { assembleNow, driveUntil, scriptedArray } from '../helpers/sim-script.js';

describe('rebuild checkpoint', () => {
  for (const level of [5, 6] as const) {
    it(`RAID-${level}: an unrelated commit during the rebuild does not record unflushed progress`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const { world, devices, content } = await scriptedArray({ level, raidDevices, spares: 1, chunkSizeBytes: 4096, stripes: 12 });
      const assembled = await assembleNow(world, devices);
      const { array } = assembled;
      world.instant = true;
      await failDisk(assembled, 'sim1', false);
      const [target] = await prepareRebuild(array, undefined);
      world.instant = false;
      const spare = devices[raidDevices]!;
      // Rebuild a few stripes; its checkpoint is far away (no flush of the spare yet).
      void runRebuild(array, target!, { checkpointIntervalMs: 1e12 }).catch(() => {});
      expect(await driveUntil(world, () => array.rebuiltBytes(target!) >= 4 * 4096)).toBe(true);
      // Another state change: its superblock writes complete everywhere, but the spare's flushes
      // are held, and then power is lost.
      void array.commitSuperblocks(() => {}).catch(() => {});
      await driveUntil(world, () => false, (io) => !(io.device === spare && io.kind === 'flush'));
      const crashed = devices.map((device) => device.crashImage(world, 'drop-all'));
      for (const [i, device] of devices.entries()) crashed[i]!.vanished = device.vanished;

      // Whatever superblock wins, the spare counts as rebuilt only where its data survived.
      world.instant = true;
      const again = await assembleNow(world, crashed, { forceRecovery: true });
      const recorded = again.array.sb.members[target!]!.recoveryOffsetBytes;
      for (const device of crashed) {
        const own = (await readSuperblocks(device)).superblock;
        if (own) expect(own.members[target!]!.recoveryOffsetBytes).toBeLessThanOrEqual(recorded);
      }
      expect((await again.array.read(0, again.array.sizeBytes)).equals(content)).toBe(true);
    });
  }
});
