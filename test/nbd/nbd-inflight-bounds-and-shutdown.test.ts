// Proves: a flooding client is held at the per-connection in-flight bound and clients together at the server's payload budget (the server stops reading instead of buffering), and that NBD_CMD_DISC and close() both let in-flight requests finish and reply before the connection closes.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NBD_CMD_FLUSH, NBD_CMD_WRITE } from '../../src/daemon/nbd-protocol.js';
import { KIB, MIB } from '../../src/units.js';
import { startMemoryNbdServer, type MemoryNbdServer } from '../helpers/nbd-memory-backend.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';

const SETTLE_MS = 100;

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

const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/**
 * The backend's active calls once they have reached `expected` (a loaded machine may take more
 * than SETTLE_MS to deliver the payloads) and then settled: a bound that is not held shows as more.
 */
async function settledActive(backend: { active: number }, expected: number): Promise<number> {
  for (const started = Date.now(); backend.active < expected && Date.now() - started < 10_000;) await settle();
  await settle();
  return backend.active;
}

async function readReplies(client: RawNbdClient, count: number): Promise<Map<bigint, number>> {
  const replies = new Map<bigint, number>();
  for (let index = 0; index < count; index++) {
    const reply = await client.readReply();
    expect(replies.has(reply.handle)).toBe(false);
    replies.set(reply.handle, reply.error);
  }
  return replies;
}

describe('in-flight bounds', () => {
  it('a client pipelining 200 writes never has more than inflightRequestsMax in the backend', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: 4 * MIB, limits: { inflightRequestsMax: 8 } });
    const client = await ready(fixture.socketPath);
    const release = fixture.backend.hold();
    for (let index = 0; index < 200; index++) {
      client.sendRequest({ type: NBD_CMD_WRITE, handle: BigInt(index + 1), offset: index * 4 * KIB, lengthBytes: 4 * KIB, payload: Buffer.alloc(4 * KIB, index) });
    }
    expect(await settledActive(fixture.backend, 8)).toBe(8);
    release();
    const replies = await readReplies(client, 200);
    expect([...replies.values()].every((error) => error === 0)).toBe(true);
    expect(fixture.backend.activeMax).toBe(8);
    expect(fixture.backend.callsOf('write')).toHaveLength(200);
    expect(fixture.backend.bytes[199 * 4 * KIB]).toBe(199);
  });

  it('payload bytes are bounded per connection and across the server; everything completes once released', async () => {
    // Each write holds 1 MiB: a connection may hold two, the server three.
    fixture = await startMemoryNbdServer({
      sizeBytes: 16 * MIB, limits: { blockSizeMaxBytes: 1 * MIB, connectionPayloadBytesMax: 2 * MIB, serverPayloadBytesMax: 3 * MIB },
    });
    const first = await ready(fixture.socketPath);
    const second = await ready(fixture.socketPath);
    const release = fixture.backend.hold();
    for (let index = 0; index < 4; index++) {
      first.sendRequest({ type: NBD_CMD_WRITE, handle: BigInt(index + 1), offset: index * MIB, lengthBytes: MIB, payload: Buffer.alloc(MIB, 1) });
    }
    expect(await settledActive(fixture.backend, 2)).toBe(2); // the connection's bound
    for (let index = 0; index < 4; index++) {
      second.sendRequest({ type: NBD_CMD_WRITE, handle: BigInt(index + 1), offset: (8 + index) * MIB, lengthBytes: MIB, payload: Buffer.alloc(MIB, 2) });
    }
    expect(await settledActive(fixture.backend, 3)).toBe(3); // the server's budget: the second connection got one
    // Requests without payload are bounded only by count, so they still get through.
    second.sendRequest({ type: NBD_CMD_FLUSH, handle: 99n, offset: 0, lengthBytes: 0 });
    release();
    expect([...(await readReplies(first, 4)).values()]).toEqual([0, 0, 0, 0]);
    const secondReplies = await readReplies(second, 5);
    expect([...secondReplies.values()].every((error) => error === 0)).toBe(true);
    expect(fixture.backend.activeMax).toBeLessThanOrEqual(3);
    expect(fixture.backend.callsOf('write')).toHaveLength(8);
  });
});

describe('disconnect and shutdown', () => {
  it('NBD_CMD_DISC: in-flight requests finish and reply, then the server closes', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: 4 * MIB });
    const client = await ready(fixture.socketPath);
    const release = fixture.backend.hold();
    for (let index = 0; index < 3; index++) {
      client.sendRequest({ type: NBD_CMD_WRITE, handle: BigInt(index + 1), offset: index * 4 * KIB, lengthBytes: 4 * KIB, payload: Buffer.alloc(4 * KIB, 0x77) });
    }
    client.disconnect();
    expect(await settledActive(fixture.backend, 3)).toBe(3);
    expect(client.unreadBytes).toBe(0);
    release();
    expect([...(await readReplies(client, 3)).entries()].sort()).toEqual([[1n, 0], [2n, 0], [3n, 0]]);
    await client.closed;
    expect(fixture.backend.bytes[2 * 4 * KIB]).toBe(0x77);
  });

  it('close(): stops accepting, lets in-flight requests reply, then closes every connection', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: 4 * MIB });
    const client = await ready(fixture.socketPath);
    const idle = await RawNbdClient.connect({ path: fixture.socketPath }); // still in the handshake
    const release = fixture.backend.hold();
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 1n, offset: 0, lengthBytes: 4 * KIB, payload: Buffer.alloc(4 * KIB, 0x42) });
    client.sendRequest({ type: NBD_CMD_FLUSH, handle: 2n, offset: 0, lengthBytes: 0 });
    await settle();
    let closed = false;
    const closing = fixture.server.close().then(() => {
      closed = true;
    });
    await idle.closed; // a client still negotiating has nothing in flight and is dropped at once
    await expect(new Promise((resolve, reject) => net.connect(fixture!.socketPath).once('connect', resolve).once('error', reject))).rejects.toThrow();
    await settle();
    expect(closed).toBe(false);
    expect(fixture.server.connectionCount).toBe(1);
    release();
    expect([...(await readReplies(client, 2)).entries()].sort()).toEqual([[1n, 0], [2n, 0]]);
    await client.closed;
    await closing;
    expect(fixture.server.connectionCount).toBe(0);
  });

  it('close() resolves only after a backend call from a vanished client has returned', async () => {
    fixture = await startMemoryNbdServer({ sizeBytes: 4 * MIB });
    const client = await ready(fixture.socketPath);
    const release = fixture.backend.hold();
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 1n, offset: 0, lengthBytes: 4 * KIB, payload: Buffer.alloc(4 * KIB, 1) });
    await settle();
    client.destroy();
    await client.closed;
    let closed = false;
    const closing = fixture.server.close().then(() => {
      closed = true;
    });
    await settle();
    expect(closed).toBe(false);
    expect(fixture.backend.active).toBe(1);
    release();
    await closing;
    expect(fixture.backend.active).toBe(0);
  });
});
