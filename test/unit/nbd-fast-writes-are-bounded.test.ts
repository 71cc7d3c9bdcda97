// Proves: at toughness fast, writes replied to before they finish are bounded: past the bound a
// fast write's reply waits until an earlier write finishes, so the unfinished writes never exceed it.
import { expect, it } from 'vitest';
import { ArrayBackend, FAST_WRITES_PENDING_MAX } from '../../src/daemon/array-backend.js';
import type { RaidArray } from '../../src/engine/raid-array.js';

class SlowArray {
  sizeBytes = 1 << 20;
  started = 0;
  private readonly releases: (() => void)[] = [];
  async write(): Promise<void> {
    this.started++;
    await new Promise<void>((resolve) => this.releases.push(resolve));
  }
  finishOne(): void {
    this.releases.shift()!();
  }
  async flush(): Promise<void> {}
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

it('fast writes past the bound wait for room before their reply', async () => {
  expect(FAST_WRITES_PENDING_MAX).toBeGreaterThanOrEqual(1);
  const array = new SlowArray();
  const backend = new ArrayBackend(array as unknown as RaidArray, 'fast', { fastWritesPendingMax: 3 });
  const replied: number[] = [];
  const writes = [0, 1, 2, 3, 4].map((i) => backend.write(i * 4096, Buffer.alloc(4096), { fua: false }).then(() => { replied.push(i); }));
  await tick();
  expect(replied).toEqual([0, 1, 2]);
  expect(array.started).toBe(3);
  expect(backend.pendingCount).toBe(3);
  array.finishOne();
  await tick();
  expect(replied).toEqual([0, 1, 2, 3]);
  expect(backend.pendingCount).toBe(3);
  array.finishOne();
  await tick();
  expect(replied).toEqual([0, 1, 2, 3, 4]);
  expect(array.started).toBe(5);
  for (let i = 0; i < 3; i++) array.finishOne();
  await Promise.all(writes);
  await backend.flush();
  expect(backend.pendingCount).toBe(0);
});
