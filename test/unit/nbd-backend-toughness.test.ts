// Proves what each acknowledgement level means: durable replies after the write and a sync;
// atomic after the write, without a sync; fast once buffered (before the write finishes), its
// failure reported by the next FLUSH and the payload held until the engine lets it go; FLUSH waits for every earlier write; FUA syncs that write.
import { describe, expect, it } from 'vitest';
import { ArrayBackend, parseToughness, type Toughness } from '../../src/daemon/array-backend.js';
import type { RaidArray } from '../../src/engine/raid-array.js';

class FakeArray {
  sizeBytes = 1 << 20;
  events: string[] = [];
  releaseWrite: (() => void)[] = [];
  failNext = false;
  async write(offset: number): Promise<void> {
    this.events.push(`write-start ${offset}`);
    const fail = this.failNext;
    this.failNext = false;
    await new Promise<void>((resolve) => this.releaseWrite.push(resolve));
    this.events.push(`write-done ${offset}`);
    if (fail) throw Object.assign(new Error('EIO'), { code: 'EIO' });
  }
  async flush(): Promise<void> {
    this.events.push('sync');
  }
  async read(): Promise<Buffer> {
    return Buffer.alloc(0);
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function backend(toughness: Toughness) {
  const array = new FakeArray();
  return { array, nbd: new ArrayBackend(array as unknown as RaidArray, toughness) };
}

describe('NBD acknowledgement levels', () => {
  it('durable: the reply follows the write and a sync', async () => {
    const { array, nbd } = backend('durable');
    let replied = false;
    const reply = nbd.write(0, Buffer.alloc(4096), { fua: false }).then(() => { replied = true; });
    await tick();
    expect(replied).toBe(false);
    array.releaseWrite.shift()!();
    await reply;
    expect(array.events).toEqual(['write-start 0', 'write-done 0', 'sync']);
  });

  it('atomic: the reply follows the write, with no sync', async () => {
    const { array, nbd } = backend('atomic');
    const reply = nbd.write(0, Buffer.alloc(4096), { fua: false });
    await tick();
    array.releaseWrite.shift()!();
    await reply;
    expect(array.events).toEqual(['write-start 0', 'write-done 0']);
  });

  it('fast: the reply comes before the write finishes; FLUSH waits for it and syncs', async () => {
    const { array, nbd } = backend('fast');
    await nbd.write(0, Buffer.alloc(4096), { fua: false });
    expect(array.events).toEqual(['write-start 0']);
    let flushed = false;
    const flush = nbd.flush().then(() => { flushed = true; });
    await tick();
    expect(flushed).toBe(false);
    array.releaseWrite.shift()!();
    await flush;
    expect(array.events).toEqual(['write-start 0', 'write-done 0', 'sync']);
  });

  it('fast: the early reply tells the server when the engine lets go of the payload', async () => {
    const { array, nbd } = backend('fast');
    const acknowledgement = await nbd.write(0, Buffer.alloc(4096), { fua: false });
    expect(acknowledgement).toBeDefined();
    let released = false;
    void acknowledgement!.dataReleased.then(() => { released = true; });
    await tick();
    expect(released).toBe(false); // the engine may still read the payload
    array.releaseWrite.shift()!();
    await acknowledgement!.dataReleased;
    expect(array.events).toEqual(['write-start 0', 'write-done 0']);
    // At atomic the reply itself comes after the engine is done: nothing to wait for.
    const atomic = backend('atomic');
    const reply = atomic.nbd.write(0, Buffer.alloc(4096), { fua: false });
    await tick();
    atomic.array.releaseWrite.shift()!();
    expect(await reply).toBeUndefined();
  });

  it('fast: a write that fails after its reply fails the next FLUSH', async () => {
    const { array, nbd } = backend('fast');
    array.failNext = true;
    await nbd.write(0, Buffer.alloc(4096), { fua: false });
    array.releaseWrite.shift()!();
    await tick();
    await expect(nbd.flush()).rejects.toThrow('EIO');
    await expect(nbd.flush()).resolves.toBeUndefined(); // reported once
  });

  it('FUA makes that one write durable at every level', async () => {
    for (const level of ['fast', 'atomic'] as const) {
      const { array, nbd } = backend(level);
      const reply = nbd.write(8192, Buffer.alloc(4096), { fua: true });
      await tick();
      array.releaseWrite.shift()!();
      await reply;
      expect(array.events).toEqual(['write-start 8192', 'write-done 8192', 'sync']);
    }
  });

  it('concurrent durable writes share syncs (group sync)', async () => {
    const { array, nbd } = backend('durable');
    const replies = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => nbd.write(i * 4096, Buffer.alloc(4096), { fua: false }));
    await tick();
    for (const release of array.releaseWrite.splice(0)) release();
    await Promise.all(replies);
    expect(array.events.filter((event) => event === 'sync').length).toBeLessThanOrEqual(2);
  });

  it('unknown levels are refused', () => {
    expect(() => parseToughness('heroic')).toThrow(/unknown toughness "heroic"/);
  });
});
