// Proves: member I/O through the ring (a worker thread per member) moves exactly the bytes asked
// for, at any size and concurrency (also transfers larger than its data area, which wait for
// room), reports errors and short transfers as DeviceIoError, settles everything in flight
// before close, and keeps a process alive while a transfer is in flight.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MemberRing, RING_DATA_BYTES, RING_PIECE_BYTES_MAX } from '../../src/device/member-ring.js';
import { FileDevice } from '../../src/device/file-device.js';
import { DeviceIoError } from '../../src/device/block-device.js';
import { Rng } from '../../src/rng.js';
import { MIB } from '../../src/units.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function scratch(sizeBytes: number): string {
  dir = mkdtempSync(join(tmpdir(), 'jraid-ring-'));
  const path = join(dir, 'member.img');
  writeFileSync(path, Buffer.alloc(sizeBytes));
  return path;
}

describe('member ring', () => {
  it('random reads and writes of every size, 64 at a time, match a model of the file', async () => {
    const sizeBytes = 32 * MIB;
    const path = scratch(sizeBytes);
    const fd = openSync(path, constants.O_RDWR);
    const ring = new MemberRing(fd, path);
    const model = Buffer.alloc(sizeBytes);
    const rng = new Rng(11);
    const sizes = [1, 512, 4096, 65536, RING_PIECE_BYTES_MAX, RING_PIECE_BYTES_MAX + 4096, 3 * MIB, RING_DATA_BYTES + MIB];
    try {
      for (let round = 0; round < 6; round++) {
        // Writes to disjoint ranges at once (their order is then irrelevant), then reads of anything.
        const jobs: Promise<void>[] = [];
        let next = 0;
        while (next < sizeBytes && jobs.length < 64) {
          const length = Math.min(sizes[rng.int(sizes.length)]!, sizeBytes - next);
          const offset = next;
          next += length + rng.int(8192);
          const bytes = Buffer.alloc(length);
          for (let i = 0; i < length; i += 997) bytes[i] = rng.int(256);
          bytes.copy(model, offset);
          jobs.push(ring.write(bytes, offset));
        }
        await Promise.all(jobs);
        const reads = Array.from({ length: 64 }, async () => {
          const length = sizes[rng.int(sizes.length)]!;
          const offset = rng.int(sizeBytes - length + 1);
          const got = Buffer.alloc(length, 0xee);
          await ring.read(got, offset);
          expect(got.equals(model.subarray(offset, offset + length))).toBe(true);
        });
        await Promise.all(reads);
      }
      const pending = ring.write(Buffer.alloc(4096, 7), 0);
      model.fill(7, 0, 4096);
      await ring.close(); // settles the write in flight first
      await pending;
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(path).equals(model)).toBe(true);
  }, 120_000);

  it('reports errno and short transfers as DeviceIoError, and refuses work after close', async () => {
    const path = scratch(MIB);
    const readOnly = openSync(path, constants.O_RDONLY);
    const ring = new MemberRing(readOnly, path);
    try {
      const denied = await ring.write(Buffer.alloc(4096), 0).catch((error: unknown) => error);
      expect(denied).toBeInstanceOf(DeviceIoError);
      expect((denied as DeviceIoError).code).toBe('EBADF');
      expect((denied as DeviceIoError).message).toContain(path);
      const short = await ring.read(Buffer.alloc(8192), MIB - 4096).catch((error: unknown) => error);
      expect(short).toBeInstanceOf(DeviceIoError);
      expect((short as DeviceIoError).message).toMatch(/short read/);
      const good = Buffer.alloc(4096, 1);
      await ring.read(good, 0);
      expect(good.every((byte) => byte === 0)).toBe(true);
      await ring.close();
      const closed = await ring.read(Buffer.alloc(4096), 0).catch((error: unknown) => error);
      expect((closed as DeviceIoError).code).toBe('EBADF');
    } finally {
      closeSync(readOnly);
    }
  });

  it('FileDevice in ring mode reads and writes through it, and a process awaiting it does not exit early', async () => {
    const path = scratch(4 * MIB);
    const script = `
      import { setMemberIoMode, FileDevice } from ${JSON.stringify(resolve('dist/src/device/file-device.js'))};
      setMemberIoMode('ring');
      const device = await FileDevice.open(${JSON.stringify(path)});
      if (device.ioMode !== 'ring') throw new Error('not ring: ' + device.ioMode);
      const bytes = Buffer.alloc(2 * 1024 * 1024, 0x5a);
      await device.write(bytes, 1024 * 1024);
      const back = Buffer.alloc(bytes.length);
      await device.read(back, 1024 * 1024);
      await device.close();
      console.log(back.equals(bytes) ? 'same' : 'different');
    `;
    const run = await execa('node', ['--input-type=module', '-e', script], { reject: false, env: { JRAID_MEMBER_IO: '' } });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('same');
    const file = readFileSync(path);
    expect(file.subarray(MIB, 3 * MIB).every((byte) => byte === 0x5a)).toBe(true);
    expect(file.subarray(0, MIB).every((byte) => byte === 0)).toBe(true);
    const device = await FileDevice.open(path);
    expect(device.ioMode).toBe('pool');
    await device.close();
  });
});
