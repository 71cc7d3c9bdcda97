// Proves scrub --repair on a journal-policy array is journaled like a write: at every cut point of
// a recorded repair run (the last write torn, unflushed writes dropped), recovered with each
// member lost, every block reads as before the repair or as repaired, never torn, never EIO.
// Repairing in place unjournaled (the negative control) is caught.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { RecordingDevice, type RecordedOp } from '../../src/device/recording-device.js';
import { OverlayDevice } from '../../src/device/overlay-device.js';
import type { Level } from '../../src/format/types.js';
import type { UnsafeJournalSkip } from '../../src/engine/journal-policy-write.js';
import { Rng } from '../../src/rng.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES } from '../../src/units.js';
import { cloneDevices, makeMemoryMembers } from '../helpers/memory-array.js';

const B = BLOCK_SIZE_BYTES;
const STATES_MAX = 800;

async function exploreRepair(level: Level, raidDevices: number, skip: UnsafeJournalSkip): Promise<{ states: number; failures: string[] }> {
  const rng = new Rng(level * 31);
  const base = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: B, memberSizeBytes: 4 * 1024 * 1024 + 24 * B, policy: 'journal', dataJournalBytes: 256 * 1024 });
  const corrupted: number[] = [];
  {
    const { array } = await assembleDevices(base, {});
    await array.write(0, rng.bytes(array.sizeBytes));
    // Damage: P of three stripes, and on RAID-6 a data block of a fourth (scrub corrects it from P and Q).
    const g = array.geometry;
    const damage = (stripe: number, role: number) => {
      const index = array.memberIndexForRole(role);
      const at = array.disks.get(index)!.dataOffsetBytes + g.memberDataOffsetBytes(stripe, 0);
      base[index]!.bytes.set(rng.bytes(B), at);
      corrupted.push(stripe);
    };
    for (const stripe of [2, 9, 17]) damage(stripe, g.stripeMap(stripe).pRole);
    if (level === 6) damage(21, g.stripeMap(21).dataRoles[1]!);
    await array.close();
  }
  const baseImages = base.map((device) => Buffer.from(device.bytes));
  // The recorded repair.
  const log: RecordedOp[] = [];
  const live = cloneDevices(base).map((device, i) => new RecordingDevice(device, i, log));
  const { array } = await assembleDevices(live, {});
  array.journalWriterForTests!.unsafeSkip = skip;
  const outcome = await scrubArray(array, { repair: true, restart: true });
  expect(outcome.mismatches.filter((m) => m.repaired).length).toBeGreaterThanOrEqual(corrupted.length);
  const truth = await array.read(0, array.sizeBytes);
  await array.close();

  const losses: number[][] = [[], ...Array.from({ length: raidDevices }, (_, a) => [a])];
  // What every loss reads before the repair: the "old" a crash may leave.
  const before = new Map<string, Buffer>();
  for (const lost of losses) {
    const overlays = baseImages.map((image, i) => new OverlayDevice(image, `mem${i}`));
    const { array: old } = await assembleDevices(overlays.filter((_, i) => !lost.includes(i)), { readOnly: true });
    before.set(lost.join(','), await old.read(0, old.sizeBytes));
    await old.abandon();
  }

  const failures: string[] = [];
  let states = 0;
  const variants = ['all', 'torn', 'subset'] as const;
  const stride = Math.max(1, Math.floor((log.length * variants.length * losses.length) / STATES_MAX));
  for (let n = 0; n < log.length * variants.length && failures.length < 3; n += stride) {
    const cut = 1 + Math.floor(n / variants.length);
    const variant = variants[n % variants.length]!;
    const last = log[cut - 1]!;
    if (variant === 'torn' && (last.kind !== 'write' || last.data.length <= SECTOR_SIZE_BYTES)) continue;
    for (const lost of losses) {
      const stateRng = new Rng(cut * 7 + n);
      const overlays = baseImages.map((image, i) => new OverlayDevice(image, `mem${i}`));
      const durableUntil = baseImages.map(() => 0);
      for (let i = 0; i < cut; i++) if (log[i]!.kind === 'flush') durableUntil[log[i]!.device] = i;
      for (let i = 0; i < cut; i++) {
        const op = log[i]!;
        if (op.kind !== 'write') continue;
        const durable = i < durableUntil[op.device]! || op.durable;
        if (!durable && variant === 'subset' && i < cut - 1 && stateRng.next() < 0.5) continue;
        if (i === cut - 1 && variant === 'torn') {
          overlays[op.device]!.writeSync(op.data.subarray(0, (1 + stateRng.int(op.data.length / SECTOR_SIZE_BYTES - 1)) * SECTOR_SIZE_BYTES), op.offsetBytes);
          continue;
        }
        overlays[op.device]!.writeSync(op.data, op.offsetBytes);
      }
      states++;
      const where = `cut ${cut}/${log.length} ${variant} lost [${lost.join(',')}]`;
      let now: Buffer;
      try {
        const { array: crashed } = await assembleDevices(overlays.filter((_, i) => !lost.includes(i)), {});
        now = await crashed.read(0, crashed.sizeBytes);
        await crashed.abandon();
      } catch (error) {
        failures.push(`${where}: ${(error as Error).message}`);
        continue;
      }
      const old = before.get(lost.join(','))!;
      for (let at = 0; at < now.length; at += B) {
        const block = now.subarray(at, at + B);
        if (block.equals(truth.subarray(at, at + B)) || block.equals(old.subarray(at, at + B))) continue;
        failures.push(`${where}: block ${at / B} is neither as before the repair nor repaired (torn)`);
        break;
      }
    }
  }
  return { states, failures };
}

describe('journal policy: scrub --repair survives a crash plus a lost member', () => {
  for (const [level, raidDevices] of [[5, 4], [6, 5]] as [Level, number][]) {
    it(`RAID-${level}: every crash state of a repair run, each member lost, reads old or repaired`, async () => {
      const { states, failures } = await exploreRepair(level, raidDevices, 'none');
      expect(failures).toEqual([]);
      expect(states).toBeGreaterThan(200);
    });
  }

  it('a repair written in place unjournaled is caught', async () => {
    const { failures } = await exploreRepair(5, 4, 'repair-in-place');
    expect(failures.some((failure) => /torn/.test(failure))).toBe(true);
  });
});
