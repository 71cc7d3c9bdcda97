// Proves: FileDevice.writeDurable (the journal's record barrier) writes through a second
// descriptor on the same file opened with O_DSYNC, on an image file and on a loop device (root),
// while ordinary writes keep the first descriptor without it; the bytes land where asked.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { constants } from 'node:fs';
import { writeFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileDevice } from '../../src/device/file-device.js';
import { attachLoop, detachLoop, isRoot } from '../helpers/loop.js';

const SIZE_BYTES = 8 * 1024 * 1024;

function fdFlags(fd: number): number {
  const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  return parseInt(/^flags:\s+([0-7]+)/m.exec(info)![1]!, 8);
}

const dir = mkdtempSync(join(tmpdir(), 'jraid-dsync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function check(path: string): Promise<void> {
  const device = await FileDevice.open(path, { exclusive: true });
  try {
    expect(await device.durableFd()).toBeUndefined();
    const record = Buffer.alloc(4096, 0x5a);
    await device.writeDurable(record, 4096 * 3);
    await device.write(Buffer.alloc(4096, 0x11), 0);
    const durableFd = (await device.durableFd())!;
    expect(durableFd).not.toBe(device.fd);
    expect(fdFlags(durableFd) & constants.O_DSYNC).toBe(constants.O_DSYNC);
    expect(fdFlags(device.fd) & constants.O_DSYNC).toBe(0);
    const back = Buffer.alloc(4096);
    await device.read(back, 4096 * 3);
    expect(back.equals(record)).toBe(true);
  } finally {
    await device.close();
  }
}

describe('durable writes use an O_DSYNC descriptor', () => {
  it('on an image file', async () => {
    const path = join(dir, 'member.img');
    await writeFile(path, '');
    await truncate(path, SIZE_BYTES);
    await check(path);
    expect(readFileSync(path).subarray(4096 * 3, 4096 * 4).every((byte) => byte === 0x5a)).toBe(true);
  });

  it.runIf(isRoot)('on a loop device', async () => {
    const loop = await attachLoop(join(dir, 'loop.img'), SIZE_BYTES);
    try {
      await check(loop);
    } finally {
      await detachLoop(loop);
    }
    expect(readFileSync(join(dir, 'loop.img')).subarray(4096 * 3, 4096 * 4).every((byte) => byte === 0x5a)).toBe(true);
  });
});
