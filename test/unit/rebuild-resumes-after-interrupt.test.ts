// Proves: a rebuild stopped at random points resumes from its (non-zero) checkpoint, not from the
// start, rebuilding only the stripes past it, and yields an exact member.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { failDisk, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { cloneDevices, dataRegion, fillRandom, makeMemoryMembers, openMemoryArray } from '../helpers/memory-array.js';
import { Rng } from '../../src/rng.js';
import type { Level } from '../../src/format/types.js';

class Killed extends Error {}

describe('rebuild resumes after an interrupt', () => {
  for (const level of [5, 6] as Level[]) {
    it(`RAID-${level}: killed several times, resumed, the spare equals the lost member`, async () => {
      const raidDevices = level === 6 ? 5 : 4;
      const devices = await makeMemoryMembers({ level, raidDevices, spares: 1, chunkSizeBytes: 4096, memberSizeBytes: 4 * 1024 * 1024 + 64 * 4096 });
      const array = await openMemoryArray(devices);
      const shadow = await fillRandom(array, level);
      const dataSizeBytes = array.sb.dataSizeBytes;
      await array.close();
      const rng = new Rng(level * 31);
      for (let lostRole = 0; lostRole < raidDevices; lostRole++) {
        const copies = cloneDevices(devices);
        const first = await assembleDevices(copies);
        await failDisk({ ...first }, copies[lostRole]!.path, false);
        const [target] = await prepareRebuild(first.array, undefined);
        expect(target).toBe(raidDevices); // the spare
        let kills = 0;
        let current = first.array;
        const stripeCount = current.geometry.stripeCount;
        let outcome: Awaited<ReturnType<typeof runRebuild>>;
        for (;;) {
          // Each run is killed a few stripes past where it resumed (its checkpoints reach the
          // superblocks after every stripe), so there is always a non-zero checkpoint to resume from.
          const checkpointBytes = current.sb.members[target!]!.recoveryOffsetBytes;
          const stopAtBytes = checkpointBytes + (2 + rng.int(stripeCount / 4)) * 4096;
          let firstDoneBytes: number | undefined;
          try {
            outcome = await runRebuild(current, target!, {
              checkpointIntervalMs: 0,
              onProgress: ({ doneBytes }) => {
                firstDoneBytes ??= doneBytes;
                if (kills < 3 && doneBytes >= stopAtBytes) throw new Killed();
              },
            });
            break;
          } catch (error) {
            if (!(error instanceof Killed)) throw error;
            kills++;
            await current.abandon();
            current = (await assembleDevices(copies)).array;
            expect(current.sb.members[target!]!.state).toBe('rebuilding');
            // The checkpoint moved on, and this run started at the previous one, not at zero.
            expect(current.sb.members[target!]!.recoveryOffsetBytes).toBeGreaterThan(checkpointBytes);
          } finally {
            expect(firstDoneBytes).toBe(checkpointBytes + 4096);
          }
        }
        expect(kills).toBe(3);
        expect(outcome!.resumedFromBytes).toBeGreaterThan(0);
        expect(outcome!.stripesRebuilt).toBe(stripeCount - outcome!.resumedFromBytes / 4096);
        expect(current.health()).toBe('clean');
        expect(dataRegion(copies[raidDevices]!, dataSizeBytes).equals(dataRegion(devices[lostRole]!, dataSizeBytes))).toBe(true);
        expect((await current.read(0, current.sizeBytes)).equals(shadow)).toBe(true);
        await current.close();
      }
    });
  }
});
