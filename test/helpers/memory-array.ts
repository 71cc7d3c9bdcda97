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
  /** journal policy: the data journal per member (added to the member size). Default 512 KiB. */
  dataJournalBytes?: number;
}

export async function makeMemoryMembers(options: MemoryArrayOptions): Promise<MemoryDevice[]> {
  const count = options.raidDevices + (options.spares ?? 0);
  const dataJournalBytes = options.policy === 'journal' ? options.dataJournalBytes ?? 512 * 1024 : 0;
  const memberSizeBytes = (options.memberSizeBytes ?? 4 * MIB + 16 * (options.chunkSizeBytes ?? 64 * 1024)) + dataJournalBytes;
  const devices = Array.from({ length: count }, (_, index) => new MemoryDevice(memberSizeBytes, `mem${index}`));
  await writeNewArray(devices, {
    level: options.level, layout: options.layout ?? defaultLayout(options.level), chunkSizeBytes: options.chunkSizeBytes ?? 64 * 1024,
    policy: options.policy ?? 'dirty-log', dataJournalBytes, raidDevices: options.raidDevices, name: 'test', zeroMetadata: false, parityInSync: true,
  });
  return devices;
}

export async function openMemoryArray(devices: BlockDevice[]): Promise<RaidArray> {
  const { array } = await assembleDevices(devices, {});
  return array;
}

import { MemoryDevice as Mem } from '../../src/device/memory-device.js';
import { Rng } from '../../src/rng.js';
import { createHash } from 'node:crypto';

/** Independent copies of memory members: one array image, many experiments. */
export function cloneDevices(devices: MemoryDevice[]): MemoryDevice[] {
  return devices.map((device) => new Mem(device.sizeBytes, device.path, Buffer.from(device.bytes)));
}

/** Fills the array with seeded random writes; returns the expected content. */
export async function fillRandom(array: RaidArray, seed: number, writes = 60): Promise<Buffer> {
  const rng = new Rng(seed);
  const shadow = await array.read(0, array.sizeBytes);
  for (let i = 0; i < writes; i++) {
    const length = 1 + rng.int(40_000);
    const offset = rng.int(array.sizeBytes - length);
    const data = rng.bytes(length);
    await array.write(offset, data);
    data.copy(shadow, offset);
  }
  return shadow;
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** The data region of a memory member (after the 4 MiB of metadata). */
export function dataRegion(device: MemoryDevice, dataSizeBytes: number): Buffer {
  return device.bytes.subarray(4 * 1024 * 1024, 4 * 1024 * 1024 + dataSizeBytes);
}
