// Proves the events rule (docs/FORMAT.md, Events): a member put back from a copy taken before a
// write session (closed cleanly or crashed) is stale and left out of reads, while a crash at any
// point of the superblock commits that open and close a session, twice in a row, stales nobody.
import { describe, expect, it } from 'vitest';
import { RecordingDevice, type RecordedOp } from '../../src/device/recording-device.js';
import { OverlayDevice } from '../../src/device/overlay-device.js';
import type { BlockDevice } from '../../src/device/block-device.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { Rng } from '../../src/rng.js';
import { MIB, SECTOR_SIZE_BYTES } from '../../src/units.js';
import { cloneDevices, makeMemoryMembers } from '../helpers/memory-array.js';

const LEVELS = [[5, 4], [6, 5]] as const;

describe('a member that missed a write session is stale', () => {
  for (const [level, raidDevices] of LEVELS) {
    for (const ending of ['a clean shutdown', 'a crash'] as const) {
      it(`RAID-${level}: a copy from before a session ending in ${ending} is left out, and reads are right`, async () => {
        const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 16 * 1024, memberSizeBytes: 4 * MIB + 64 * 16 * 1024 });
        const aside = Buffer.from(devices[1]!.bytes);
        const { array } = await assembleDevices(devices);
        const payload = new Rng(level).bytes(array.sizeBytes);
        await array.write(0, payload);
        if (ending === 'a clean shutdown') {
          await array.close();
        } else {
          await array.flush(); // acknowledged, then the crash: no stripe left to recover
          await array.abandon();
        }
        aside.copy(devices[1]!.bytes);
        const again = await assembleDevices(devices);
        expect(again.report.stale).toEqual([devices[1]!.path]);
        expect(again.array.state()).toBe('degraded');
        expect((await again.array.read(0, again.array.sizeBytes)).equals(payload)).toBe(true);
        await again.array.abandon();
      });
    }
  }
});

/** The members as they would be after a crash at `cut` (the last write possibly torn). */
function crashed(images: Buffer[], log: RecordedOp[], cut: number, torn: boolean, rng: Rng): OverlayDevice[] {
  const overlays = images.map((image, i) => new OverlayDevice(image, `mem${i}`));
  for (let i = 0; i < cut; i++) {
    const op = log[i]!;
    if (op.kind !== 'write') continue;
    const keep = torn && i === cut - 1 ? SECTOR_SIZE_BYTES * (1 + rng.int(op.data.length / SECTOR_SIZE_BYTES - 1)) : op.data.length;
    overlays[op.device]!.writeSync(op.data.subarray(0, keep), op.offsetBytes);
  }
  return overlays;
}

/** Records one session (open, one write, clean close) on copies of `images`. */
async function recordSession(images: Buffer[], payload: Buffer): Promise<RecordedOp[]> {
  const log: RecordedOp[] = [];
  const devices = images.map((image, i) => new RecordingDevice(new OverlayDevice(image, `mem${i}`), i, log));
  const { array } = await assembleDevices(devices, { journal: { idleCleanMs: 0 } });
  await array.write(0, payload);
  await array.close();
  return log;
}

function imagesOf(devices: BlockDevice[]): Buffer[] {
  return devices.map((device) => {
    const overlay = device as OverlayDevice;
    const bytes = Buffer.alloc(overlay.sizeBytes);
    overlay.readSync(bytes, 0);
    return bytes;
  });
}

async function staleAfter(devices: BlockDevice[]): Promise<string[]> {
  const { array, report } = await assembleDevices(devices, { journal: { idleCleanMs: 0 } });
  const stale = [...report.stale, ...array.degradedRoles().map((role) => `role ${role} missing`)];
  await array.abandon();
  return stale;
}

describe('a crash during the commits that open and close a session stales nobody', () => {
  for (const [level, raidDevices] of LEVELS) {
    it(`RAID-${level}: every cut of a session, then every cut of the next session`, async () => {
      const base = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 16 * 1024, memberSizeBytes: 4 * MIB + 16 * 16 * 1024 });
      const baseImages = cloneDevices(base).map((device) => device.bytes);
      const rng = new Rng(level * 31);
      const payload = rng.bytes(16 * 1024);
      const first = await recordSession(baseImages, payload);
      let states = 0;
      for (let cut = 1; cut <= first.length; cut++) {
        for (const torn of [false, true]) {
          if (torn && (first[cut - 1]!.kind !== 'write' || (first[cut - 1] as { data: Buffer }).data.length <= SECTOR_SIZE_BYTES)) continue;
          const afterFirst = crashed(baseImages, first, cut, torn, rng);
          expect(await staleAfter(afterFirst), `first session, cut ${cut}/${first.length}${torn ? ' torn' : ''}`).toEqual([]);
          states++;
          // The next session starts from that crash (recovery included) and crashes too.
          if (cut % 3 !== 0) continue;
          const middle = imagesOf(afterFirst);
          const second = await recordSession(middle, rng.bytes(16 * 1024));
          for (let cut2 = 1; cut2 <= second.length; cut2++) {
            expect(await staleAfter(crashed(middle, second, cut2, false, rng)), `first cut ${cut}, second cut ${cut2}/${second.length}`).toEqual([]);
            states++;
          }
        }
      }
      expect(states).toBeGreaterThan(100);
    }, 300_000);
  }
});
