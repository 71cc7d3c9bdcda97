// Proves: the server reuses payload buffers without ever handing one out while its bytes are still in use (a write the backend acknowledged early keeps its buffer, counted against the connection's payload bound, until the backend lets it go), and that a steady stream of requests allocates no new payload buffers.
import { afterEach, describe, expect, it } from 'vitest';
import { NBD_CMD_READ, NBD_CMD_WRITE } from '../../src/daemon/nbd-protocol.js';
import type { NbdEarlyAcknowledgement, NbdWriteOptions } from '../../src/daemon/nbd-server.js';
import { KIB, MIB } from '../../src/units.js';
import { MemoryNbdBackend, startMemoryNbdServer, type MemoryNbdServer } from '../helpers/nbd-memory-backend.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';

const SETTLE_MS = 100;
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

let fixture: MemoryNbdServer | undefined;

afterEach(async () => {
  await fixture?.cleanup();
  expect(fixture?.backend.violations ?? []).toEqual([]);
  fixture = undefined;
});

async function ready(socketPath: string): Promise<RawNbdClient> {
  const client = await RawNbdClient.connect({ path: socketPath });
  await client.handshake();
  return client;
}

/** Waits (up to 10 s on a loaded machine) until `done()` holds, then a little longer so a broken bound can show. */
async function settledWhen(done: () => boolean): Promise<void> {
  for (const started = Date.now(); !done() && Date.now() - started < 10_000;) await settle();
  await settle();
}

/**
 * Acknowledges every write at once, as ArrayBackend does at toughness fast, and reads the
 * payload only later, when the test lets that write go: the store then holds what the buffer
 * holds at that moment, so a buffer the server reused too early shows as the wrong bytes.
 */
function acknowledgeEarly(backend: MemoryNbdBackend): { received: number; letGo: (() => void)[] } {
  const state = { received: 0, letGo: [] as (() => void)[] };
  backend.write = async (offsetBytes: number, data: Buffer, _options: NbdWriteOptions): Promise<NbdEarlyAcknowledgement> => {
    state.received++;
    let release!: () => void;
    const dataReleased = new Promise<void>((resolve) => { release = resolve; });
    state.letGo.push(() => {
      data.copy(backend.bytes, offsetBytes);
      release();
    });
    return { dataReleased };
  };
  return state;
}

describe('payload buffers', () => {
  it('a write acknowledged early keeps its buffer until the backend lets it go, and counts against the connection bound', async () => {
    // Each write holds 1 MiB; the connection may hold two.
    fixture = await startMemoryNbdServer({
      sizeBytes: 16 * MIB, limits: { blockSizeMaxBytes: 1 * MIB, connectionPayloadBytesMax: 2 * MIB, serverPayloadBytesMax: 8 * MIB },
    });
    const early = acknowledgeEarly(fixture.backend);
    const client = await ready(fixture.socketPath);
    for (let index = 0; index < 4; index++) {
      client.sendRequest({ type: NBD_CMD_WRITE, handle: BigInt(index + 1), offset: index * MIB, lengthBytes: MIB, payload: Buffer.alloc(MIB, 0x10 + index) });
    }
    // Two replies come back at once; the third write waits for a buffer though nothing is in flight.
    const firstReplies = [await client.readReply(), await client.readReply()];
    expect(firstReplies.map((reply) => reply.error)).toEqual([0, 0]);
    await settledWhen(() => early.received >= 2);
    expect(early.received).toBe(2);
    expect(fixture.server.payloadStats.connectionHeldBytesMax).toBeLessThanOrEqual(2 * MIB);

    // Letting the first go makes room for the third, which may reuse its buffer.
    early.letGo.shift()!();
    await settledWhen(() => early.received >= 3);
    expect(early.received).toBe(3);
    early.letGo.shift()!();
    await settledWhen(() => early.received >= 4);
    for (const letGo of early.letGo.splice(0)) letGo();
    const lastReplies = [await client.readReply(), await client.readReply()];
    expect(lastReplies.map((reply) => reply.error)).toEqual([0, 0]);
    for (let index = 0; index < 4; index++) {
      const stored = fixture.backend.bytes.subarray(index * MIB, (index + 1) * MIB);
      expect(stored.every((byte) => byte === 0x10 + index), `write ${index + 1} stored as sent`).toBe(true);
    }
    expect(fixture.server.payloadStats.connectionHeldBytesMax).toBeLessThanOrEqual(2 * MIB);
  });

  it('a steady stream of reads and writes allocates no new payload buffers after the first round', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: 16 * MIB, limits: { inflightRequestsMax: 16 } });
    const client = await ready(fixture.socketPath);
    const depth = 16;
    let handle = 1n;
    const round = async (seed: number): Promise<void> => {
      for (let index = 0; index < depth; index++) {
        client.sendRequest({ type: NBD_CMD_WRITE, handle: handle++, offset: index * 4 * KIB, lengthBytes: 4 * KIB, payload: Buffer.alloc(4 * KIB, seed + index) });
      }
      for (let index = 0; index < depth; index++) expect((await client.readReply()).error).toBe(0);
      const handles = new Map<bigint, number>();
      for (let index = 0; index < depth; index++) {
        handles.set(handle, index);
        client.sendRequest({ type: NBD_CMD_READ, handle: handle++, offset: index * 4 * KIB, lengthBytes: 4 * KIB });
      }
      for (let index = 0; index < depth; index++) {
        const reply = await client.readReply(4 * KIB);
        expect(reply.error).toBe(0);
        const expected = (seed + handles.get(reply.handle)!) & 0xff;
        expect(reply.data.every((byte) => byte === expected)).toBe(true);
      }
    };
    await round(0);
    const allocatedAfterWarmUp = fixture.server.payloadStats.buffersAllocated;
    expect(allocatedAfterWarmUp).toBeGreaterThan(0);
    expect(allocatedAfterWarmUp).toBeLessThanOrEqual(depth);
    for (let seed = 1; seed < 20; seed++) await round(seed);
    expect(fixture.server.payloadStats.buffersAllocated).toBe(allocatedAfterWarmUp);
  });
});
