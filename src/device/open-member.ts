// Opens a member path as a BlockDevice: where the fault-injection wrapper is chosen. The
// JRAID_FAULTS environment variable (tests and fault drills; its spec is checked in
// fault-spec.ts) wraps the paths it names in a FaultDevice. Paths compare after resolving.

import { resolve } from 'node:path';
import type { BlockDevice } from './block-device.js';
import { FaultDevice } from './fault-device.js';
import { FAULTS_ENV, parseFaultSpecs } from './fault-spec.js';
import { FileDevice, type OpenOptions } from './file-device.js';

export async function openMemberDevice(path: string, options: Omit<OpenOptions, 'createSizeBytes'> = {}): Promise<BlockDevice> {
  // Checked before the member opens: a bad spec stops the command with nothing left open.
  const spec = parseFaultSpecs(process.env[FAULTS_ENV]).find((candidate) => resolve(candidate.path) === resolve(path));
  const device = await FileDevice.open(path, options);
  return spec ? new FaultDevice(device, spec) : device;
}

/** The FileDevice under any wrappers, for locks that need a file descriptor. */
export function underlyingFile(device: BlockDevice): FileDevice | undefined {
  let current: unknown = device;
  while (current && !(current instanceof FileDevice)) current = (current as { inner?: unknown }).inner;
  return current as FileDevice | undefined;
}
