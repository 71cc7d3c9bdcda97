// Loop devices for the real-device runs of the CLI tests. They run whenever the process is
// root; under CI=true a non-root run fails loudly instead of skipping.

import { execa } from 'execa';
import { truncate, writeFile } from 'node:fs/promises';

export const isRoot = process.getuid?.() === 0;

export function loopSuiteEnabled(): boolean {
  if (isRoot) return true;
  if (process.env.CI === 'true') throw new Error('CI=true but not root: the loop-device suites cannot run and must not be skipped');
  return false;
}

export async function attachLoop(imagePath: string, sizeBytes: number): Promise<string> {
  await writeFile(imagePath, '');
  await truncate(imagePath, sizeBytes);
  const { stdout } = await execa('losetup', ['-f', '--show', imagePath]);
  return stdout.trim();
}

export async function detachLoop(device: string): Promise<void> {
  await execa('losetup', ['-d', device], { reject: false });
}

/** Creates `count` loop devices of `sizeBytes` backed by files named after `prefix`. */
export async function makeLoopDevices(prefix: string, count: number, sizeBytes: number): Promise<{ devices: string[]; detach(): Promise<void> }> {
  const devices: string[] = [];
  try {
    for (let i = 0; i < count; i++) devices.push(await attachLoop(`${prefix}-${i}.img`, sizeBytes));
  } catch (error) {
    await Promise.all(devices.map(detachLoop));
    throw error;
  }
  return { devices, detach: () => Promise.all(devices.map(detachLoop)).then(() => {}) };
}
