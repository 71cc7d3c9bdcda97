// Scripted runs on SimDevices, for focused regression tests of orderings the fault simulation
// found: the test decides which member I/O completes, and when.

import { writeNewArray } from '../../src/engine/create.js';
import { assembleDevices, type AssembleOptions, type Assembled } from '../../src/engine/assemble.js';
import { DATA_OFFSET_BYTES } from '../../src/format/layout.js';
import { defaultLayout, type Level, type Policy } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { SimDevice, SimWorld, type IoKind } from './sim-device.js';

export interface ScriptedArray {
  world: SimWorld;
  devices: SimDevice[];
  /** The array's content after the initial fill. */
  content: Buffer;
}

/** Members on SimDevices, created and filled with seeded data (I/O instant), closed cleanly. */
export async function scriptedArray(options: { level: Level; raidDevices: number; spares?: number; chunkSizeBytes: number; stripes: number; seed?: number; policy?: Policy }): Promise<ScriptedArray> {
  const world = new SimWorld(options.seed ?? 1);
  world.instant = true;
  const devices = Array.from({ length: options.raidDevices + (options.spares ?? 0) }, (_, i) => new SimDevice(world, `sim${i}`, DATA_OFFSET_BYTES + options.stripes * options.chunkSizeBytes));
  await writeNewArray(devices, {
    level: options.level, layout: defaultLayout(options.level), chunkSizeBytes: options.chunkSizeBytes, policy: options.policy ?? 'dirty-log',
    raidDevices: options.raidDevices, name: 'scripted', zeroMetadata: false, parityInSync: true,
  });
  const { array } = await assembleDevices(devices, { journal: { idleCleanMs: 0 } });
  const content = new Rng(options.seed ?? 1).bytes(array.sizeBytes);
  await array.write(0, content);
  await array.close();
  for (const device of devices) device.closed = false;
  return { world, devices, content };
}

/** Assembles with I/O completing at once. */
export async function assembleNow(world: SimWorld, devices: SimDevice[], options: AssembleOptions = {}): Promise<Assembled> {
  const instant = world.instant;
  world.instant = true;
  try {
    return await assembleDevices(devices, { journal: { idleCleanMs: 0 }, ...options });
  } finally {
    world.instant = instant;
  }
}

export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Completes queued I/O that `accept` takes (all, by default), oldest first, until `done()` or
 * until nothing it takes is queued. Returns whether `done()` held.
 */
export async function driveUntil(world: SimWorld, done: () => boolean, accept: (io: { device: SimDevice; kind: IoKind; offsetBytes: number }) => boolean = () => true, stepsMax = 100_000): Promise<boolean> {
  for (let step = 0; step < stepsMax; step++) {
    await settle();
    if (done()) return true;
    if (!world.completeMatching(accept)) return done();
  }
  throw new Error(`driveUntil: still running after ${stepsMax} steps`);
}

/** Runs `work` to completion, completing every I/O it queues in order. */
export async function drive<T>(world: SimWorld, work: Promise<T>): Promise<T> {
  let settled = false;
  const tracked = work.finally(() => { settled = true; });
  tracked.catch(() => {});
  await driveUntil(world, () => settled);
  return tracked;
}
