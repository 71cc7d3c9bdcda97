// Shared harness: arrays on memory devices, fast enough for thousands of random operations.

import { MemoryDevice } from '../../src/device/memory-device.js';
import type { BlockDevice } from '../../src/device/block-device.js';
import { writeNewArray } from '../../src/engine/create.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import type { RaidArray } from '../../src/engine/raid-array.js';
import type { LayoutName, Level, Policy } from '../../src/format/types.js';
import { defaultLayout } from '../../src/format/types.js';
import { MIB } from '../../src/units.js';

export interface MemoryArrayOptions {
  level: Level;
  raidDevices: number;
  spares?: number;
  chunkSizeBytes?: number;
  memberSizeBytes?: number;
  layout?: LayoutName;
  policy?: Policy;
}

export async function makeMemoryMembers(options: MemoryArrayOptions): Promise<MemoryDevice[]> {
  const count = options.raidDevices + (options.spares ?? 0);
  const memberSizeBytes = options.memberSizeBytes ?? 4 * MIB + 16 * (options.chunkSizeBytes ?? 64 * 1024);
  const devices = Array.from({ length: count }, (_, index) => new MemoryDevice(memberSizeBytes, `mem${index}`));
  await writeNewArray(devices, {
    level: options.level, layout: options.layout ?? defaultLayout(options.level), chunkSizeBytes: options.chunkSizeBytes ?? 64 * 1024,
    policy: options.policy ?? 'resync', raidDevices: options.raidDevices, name: 'test', zeroMetadata: false, parityInSync: true,
  });
  return devices;
}

export async function openMemoryArray(devices: BlockDevice[]): Promise<RaidArray> {
  const { array } = await assembleDevices(devices, {});
  return array;
}
