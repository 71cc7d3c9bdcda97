// Opens a member path as a BlockDevice. The JRAID_FAULTS environment variable (for tests and
// fault drills; jraid(8), ENVIRONMENT) wraps chosen paths in a FaultDevice:
//   JRAID_FAULTS='[{"path":"/srv/b.img","badReadRanges":[[8388608,8392704]],"seed":1}]'
// Ranges are member byte offsets [start, end). Paths compare after resolving.

import { resolve } from 'node:path';
import type { BlockDevice } from './block-device.js';
import { FaultDevice, type FaultPlan } from './fault-device.js';
import { FileDevice, type OpenOptions } from './file-device.js';
import { JraidError } from '../errors.js';

interface FaultSpec extends FaultPlan {
  path: string;
}

function faultSpecs(): FaultSpec[] {
  const text = process.env.JRAID_FAULTS;
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) throw new JraidError('E_USAGE', 'JRAID_FAULTS must be a JSON array of {"path", ...} objects', { hint: 'see jraid(8), ENVIRONMENT' });
  return parsed as FaultSpec[];
}

export async function openMemberDevice(path: string, options: Omit<OpenOptions, 'createSizeBytes'> = {}): Promise<BlockDevice> {
  const device = await FileDevice.open(path, options);
  const spec = faultSpecs().find((candidate) => resolve(candidate.path) === resolve(path));
  return spec ? new FaultDevice(device, spec) : device;
}

/** The FileDevice under any wrappers, for locks that need a file descriptor. */
export function underlyingFile(device: BlockDevice): FileDevice | undefined {
  let current: unknown = device;
  while (current && !(current instanceof FileDevice)) current = (current as { inner?: unknown }).inner;
  return current as FileDevice | undefined;
}
