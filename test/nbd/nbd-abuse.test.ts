// Proves: every way a raw client can break the protocol (bad magic, unknown options and commands, oversized lengths, out-of-range offsets, vanishing mid-payload) is answered as the spec says, no bad request reaches the backend, and a second client on its own connection keeps reading and writing throughout.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EINVAL, NBD_ENOSPC,
  NBD_FLAG_C_FIXED_NEWSTYLE, NBD_OPT_GO, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP,
  NBD_REQUEST_MAGIC, encodeInfoRequest, encodeOptionHeader,
} from '../../src/daemon/nbd-protocol.js';
import { KIB, MIB } from '../../src/units.js';
import { startMemoryNbdServer, type MemoryNbdServer } from '../helpers/nbd-memory-backend.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';

const EXPORT_SIZE_BYTES = 8 * MIB;
const BLOCK_SIZE_MAX_BYTES = 1 * MIB;
const CLOSE_WAIT_MS = 2_000;

let fixture: MemoryNbdServer;
let witness: RawNbdClient;
let witnessRound = 0;

async function connect(): Promise<RawNbdClient> {
  return RawNbdClient.connect({ path: fixture.socketPath });
}

async function ready(): Promise<RawNbdClient> {
  const client = await connect();
  await client.handshake({ exportName: 'jraid0' });
  return client;
}

/** The second client, on its own connection, still writes and reads back its own bytes. */
async function witnessStillWorks(): Promise<void> {
  witnessRound++;
  const offsetBytes = 7 * MIB + witnessRound * 4 * KIB;
  const data = Buffer.alloc(4 * KIB, witnessRound);
  expect(await witness.write(offsetBytes, data, BigInt(witnessRound * 2))).toBe(0);
  const reply = await witness.read(offsetBytes, data.length, BigInt(witnessRound * 2 + 1));
  expect(reply.error).toBe(0);
  expect(reply.data.equals(data)).toBe(true);
}

function backendWritesAt(offsetBytes: number): number {
  return fixture.backend.callsOf('write').filter((call) => call.offsetBytes === offsetBytes).length;
}

beforeAll(async () => {
  fixture = await startMemoryNbdServer({ sizeBytes: EXPORT_SIZE_BYTES, exportName: 'jraid0', limits: { blockSizeMaxBytes: BLOCK_SIZE_MAX_BYTES, closeLingerMs: 200 } });
  witness = await ready();
});

afterAll(async () => {
  witness.disconnect();
  await witness.closed;
  await fixture.cleanup();
  expect(fixture.backend.violations).toEqual([]);
  expect(fixture.logs.filter((log) => log.level === 'error')).toEqual([]);
});

beforeEach(async () => {
  await witnessStillWorks();
});

describe('handshake abuse', () => {
  it('a bad option magic closes that connection without a reply', async () => {
    const client = await connect();
    await client.greet();
    const option = encodeOptionHeader(NBD_OPT_GO, encodeInfoRequest('', []));
    option.write('IHAVEOPX', 0, 'latin1');
    client.send(option);
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    expect(client.unreadBytes).toBe(0);
    await witnessStillWorks();
  });

  it('client flags the server never advertised close that connection', async () => {
    const client = await connect();
    await client.greet(NBD_FLAG_C_FIXED_NEWSTYLE | 1 << 7);
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    await witnessStillWorks();
  });

  it('a greeting answered with garbage and a hang-up costs nothing', async () => {
    const client = await connect();
    client.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    await witnessStillWorks();
  });

  it('an unknown option gets NBD_REP_ERR_UNSUP and the session continues to transmission', async () => {
    const client = await connect();
    await client.greet();
    client.sendOption(0x4242, Buffer.from('whatever data'));
    const [unsup] = await client.readOptionReplies();
    expect(unsup).toMatchObject({ option: 0x4242, replyType: NBD_REP_ERR_UNSUP });
    client.sendOption(NBD_OPT_STRUCTURED_REPLY);
    expect((await client.readOptionReplies())[0]).toMatchObject({ option: NBD_OPT_STRUCTURED_REPLY, replyType: NBD_REP_ERR_UNSUP });
    client.sendOption(NBD_OPT_GO, encodeInfoRequest('no-such-export', []));
    expect((await client.readOptionReplies())[0]).toMatchObject({ option: NBD_OPT_GO, replyType: NBD_REP_ERR_UNKNOWN });
    client.sendOption(NBD_OPT_GO, encodeInfoRequest('jraid0', []));
    const replies = await client.readOptionReplies();
    expect(replies[replies.length - 1]!.replyType).toBe(NBD_REP_ACK);
    expect(await client.write(0, Buffer.alloc(512, 0x11))).toBe(0);
    client.disconnect();
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    await witnessStillWorks();
  });
});

describe('transmission abuse', () => {
  it('a WRITE longer than the maximum block size gets EINVAL, then its connection is closed; nothing is written', async () => {
    const client = await ready();
    const offsetBytes = 1 * MIB;
    const lengthBytes = BLOCK_SIZE_MAX_BYTES + 1;
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 77n, offset: offsetBytes, lengthBytes, payload: Buffer.alloc(lengthBytes, 0xee) });
    const reply = await client.readReply();
    expect(reply).toMatchObject({ error: NBD_EINVAL, handle: 77n });
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    expect(backendWritesAt(offsetBytes)).toBe(0);
    await witnessStillWorks();
  });

  it('a READ longer than the maximum, or of length 0, gets EINVAL and the connection keeps working', async () => {
    const client = await ready();
    client.sendRequest({ type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: BLOCK_SIZE_MAX_BYTES + 1 });
    expect(await client.readReply(BLOCK_SIZE_MAX_BYTES + 1)).toMatchObject({ error: NBD_EINVAL, handle: 1n });
    client.sendRequest({ type: NBD_CMD_READ, handle: 2n, offset: 0, lengthBytes: 0 });
    expect(await client.readReply()).toMatchObject({ error: NBD_EINVAL, handle: 2n });
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 3n, offset: 0, lengthBytes: 0 });
    expect(await client.readReply()).toMatchObject({ error: NBD_EINVAL, handle: 3n });
    expect((await client.read(0, 4096, 4n)).error).toBe(0);
    client.disconnect();
    await witnessStillWorks();
  });

  it('requests past the end: READ and TRIM get EINVAL, WRITE and WRITE_ZEROES get ENOSPC; the WRITE payload is consumed, nothing written', async () => {
    const client = await ready();
    const offsetBytes = EXPORT_SIZE_BYTES - 4 * KIB;
    client.sendRequest({ type: NBD_CMD_READ, handle: 1n, offset: offsetBytes, lengthBytes: 8 * KIB });
    expect(await client.readReply(8 * KIB)).toMatchObject({ error: NBD_EINVAL, handle: 1n });
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 2n, offset: offsetBytes, lengthBytes: 8 * KIB, payload: Buffer.alloc(8 * KIB, 0xcc) });
    expect(await client.readReply()).toMatchObject({ error: NBD_ENOSPC, handle: 2n });
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 3n, offset: 2n ** 63n, lengthBytes: 512, payload: Buffer.alloc(512, 0xcc) });
    expect(await client.readReply()).toMatchObject({ error: NBD_ENOSPC, handle: 3n });
    client.sendRequest({ type: NBD_CMD_WRITE_ZEROES, flags: NBD_CMD_FLAG_NO_HOLE, handle: 4n, offset: offsetBytes, lengthBytes: 8 * KIB });
    expect(await client.readReply()).toMatchObject({ error: NBD_ENOSPC, handle: 4n });
    client.sendRequest({ type: NBD_CMD_TRIM, handle: 5n, offset: EXPORT_SIZE_BYTES, lengthBytes: 1 });
    expect(await client.readReply()).toMatchObject({ error: NBD_EINVAL, handle: 5n });
    // The refused payloads were consumed exactly: the next request on this connection parses and runs.
    expect(await client.write(offsetBytes, Buffer.alloc(4 * KIB, 0xdd), 6n)).toBe(0);
    expect(fixture.backend.callsOf('write').filter((call) => call.offsetBytes === offsetBytes)).toEqual([{ op: 'write', offsetBytes, lengthBytes: 4 * KIB, fua: false }]);
    expect(fixture.backend.callsOf('writeZeroes').filter((call) => call.offsetBytes === offsetBytes)).toEqual([]);
    client.disconnect();
    await witnessStillWorks();
  });

  it('an unknown command gets EINVAL and the connection keeps working', async () => {
    const client = await ready();
    for (const [handle, type] of [[1n, 9], [2n, 0x7fff], [3n, 5 /* NBD_CMD_CACHE, not advertised */], [4n, 7 /* BLOCK_STATUS */]] as const) {
      client.sendRequest({ type, handle, offset: 0, lengthBytes: 512 });
      expect(await client.readReply()).toMatchObject({ error: NBD_EINVAL, handle });
    }
    client.sendRequest({ type: NBD_CMD_READ, flags: 1 << 9, handle: 5n, offset: 0, lengthBytes: 512 });
    expect(await client.readReply(512)).toMatchObject({ error: NBD_EINVAL, handle: 5n });
    expect((await client.read(0, 512, 6n)).error).toBe(0);
    client.disconnect();
    await witnessStillWorks();
  });

  it('a bad request magic closes that connection after answering what came before it', async () => {
    const client = await ready();
    client.sendRequest({ type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: 512 });
    client.sendRequest({ type: NBD_CMD_READ, handle: 2n, offset: 0, lengthBytes: 512, magic: NBD_REQUEST_MAGIC ^ 0x100 });
    expect(await client.readReply(512)).toMatchObject({ error: 0, handle: 1n });
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    expect(client.unreadBytes).toBe(0);
    await witnessStillWorks();
  });

  it('a client vanishing mid-payload never causes a backend write', async () => {
    const client = await ready();
    const offsetBytes = 3 * MIB;
    const payload = Buffer.alloc(256 * KIB, 0xab);
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 1n, offset: offsetBytes, lengthBytes: payload.length });
    client.send(payload.subarray(0, payload.length - 1));
    // Let the server take in everything but the last byte, then vanish.
    await new Promise((resolve) => setTimeout(resolve, 50));
    client.destroy();
    await client.closed;
    const deadline = Date.now() + CLOSE_WAIT_MS;
    while (fixture.server.connectionCount > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(fixture.server.connectionCount).toBe(1); // the witness
    expect(backendWritesAt(offsetBytes)).toBe(0);
    expect(fixture.backend.bytes.subarray(offsetBytes, offsetBytes + payload.length).every((byte) => byte === 0)).toBe(true);
    await witnessStillWorks();
  });

  it('a client that half-closes after its requests still gets every reply', async () => {
    const client = await ready();
    client.sendRequest({ type: NBD_CMD_WRITE, handle: 1n, offset: 0, lengthBytes: 4096, payload: Buffer.alloc(4096, 0x5a) });
    client.sendRequest({ type: NBD_CMD_FLUSH, handle: 2n, offset: 0, lengthBytes: 0 });
    client.endWriting();
    const replies = [await client.readReply(), await client.readReply()];
    expect(replies.map((reply) => [reply.handle, reply.error]).sort()).toEqual([[1n, 0], [2n, 0]]);
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    await witnessStillWorks();
  });
});
