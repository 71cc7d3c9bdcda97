// Proves: backend failures become the NBD errors the table names (EIO, nbdError, ENOSPC family; jraid's own codes are the backend's to map, the server knows none), unexpected ones become EIO with an error log (a stack for a bug, message and code for a jraid error), a failed READ sends no payload so the stream stays in step, and FUA, NO_HOLE and TRIM+FUA reach the backend as asked.
import { afterEach, describe, expect, it } from 'vitest';
import {
  NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EIO, NBD_ENOSPC,
  NBD_EPERM,
} from '../../src/daemon/nbd-protocol.js';
import { nbdErrorForFailure } from '../../src/daemon/nbd-server.js';
import { JraidError } from '../../src/errors.js';
import { MIB } from '../../src/units.js';
import { startMemoryNbdServer, type MemoryNbdServer } from '../helpers/nbd-memory-backend.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';

let fixture: MemoryNbdServer | undefined;

afterEach(async () => {
  await fixture?.cleanup();
  fixture = undefined;
});

async function ready(): Promise<RawNbdClient> {
  fixture = await startMemoryNbdServer({ sizeBytes: 4 * MIB });
  const client = await RawNbdClient.connect({ path: fixture.socketPath });
  await client.handshake();
  return client;
}

const withCode = (code: string) => Object.assign(new Error(`simulated ${code}`), { code });

describe('backend failures', () => {
  // [what the backend threw, NBD error sent, expected (logged at debug) or not (logged at error)]
  const table: [string, unknown, number, boolean][] = [
    ['EIO', withCode('EIO'), NBD_EIO, true],
    ['an explicit nbdError', Object.assign(new Error('full'), { nbdError: NBD_ENOSPC }), NBD_ENOSPC, true],
    ['an nbdError the spec does not define', Object.assign(new Error('odd'), { nbdError: 2 }), NBD_EIO, false],
    ['ENOSPC', withCode('ENOSPC'), NBD_ENOSPC, true],
    ['EDQUOT', withCode('EDQUOT'), NBD_ENOSPC, true],
    ['EFBIG', withCode('EFBIG'), NBD_ENOSPC, true],
    ['EROFS', withCode('EROFS'), NBD_EPERM, true],
    ['JraidError E_BAD_BLOCK the backend did not map', new JraidError('E_BAD_BLOCK', 'unreadable block'), NBD_EIO, false],
    ['JraidError E_BAD_BLOCK the backend mapped', Object.assign(new JraidError('E_BAD_BLOCK', 'unreadable block'), { nbdError: NBD_EIO }), NBD_EIO, true],
    ['JraidError with another code', new JraidError('E_CONFIG', 'odd'), NBD_EIO, false],
    ['a plain Error', new Error('bug'), NBD_EIO, false],
    ['a thrown string', 'oops', NBD_EIO, false],
    ['null', null, NBD_EIO, false],
  ];
  for (const [what, failure, error, expected] of table) {
    it(`maps ${what} to ${error}`, () => {
      expect(nbdErrorForFailure(failure)).toEqual({ error, expected });
    });
  }

  it('a failed READ gets its error and no payload; the next request is parsed correctly', async () => {
    const client = await ready();
    fixture!.backend.failWith = (call) => (call.op === 'read' && call.offsetBytes === 0 ? withCode('EIO') : undefined);
    client.sendRequest({ type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: 64 * 1024 });
    expect(await client.readReply(64 * 1024)).toMatchObject({ error: NBD_EIO, handle: 1n, data: Buffer.alloc(0) });
    const ok = await client.read(4096, 512, 2n);
    expect(ok.error).toBe(0);
    expect(ok.data.length).toBe(512);
    expect(fixture!.logs.filter((log) => log.level === 'error')).toEqual([]);
  });

  it('an unexpected failure is EIO and logged at error level with the request', async () => {
    const client = await ready();
    fixture!.backend.failWith = (call) => (call.op === 'write' ? new TypeError('cannot read properties of undefined') : undefined);
    expect(await client.write(8192, Buffer.alloc(512))).toBe(NBD_EIO);
    const errors = fixture!.logs.filter((log) => log.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/write of 512 bytes at 8192 failed unexpectedly: TypeError/);
  });

  it("an unexpected jraid error is logged with its message and code, not a stack", async () => {
    const client = await ready();
    fixture!.backend.failWith = (call) => (call.op === 'write' ? new JraidError('E_DAEMON', 'mem0 is marked faulty, but cluster node(s) 1 still had it in use after 10000 ms') : undefined);
    expect(await client.write(4096, Buffer.alloc(512))).toBe(NBD_EIO);
    const errors = fixture!.logs.filter((log) => log.level === 'error');
    expect(errors.map((log) => log.message)).toEqual([expect.stringMatching(/write of 512 bytes at 4096 failed unexpectedly: mem0 is marked faulty, but cluster node\(s\) 1 still had it in use after 10000 ms \[E_DAEMON\]$/)]);
    expect(errors[0]!.message).not.toMatch(/\n\s+at /);
  });

  it('a backend READ returning the wrong length is EIO, never a short reply', async () => {
    const client = await ready();
    fixture!.backend.read = async () => Buffer.alloc(10);
    expect((await client.read(0, 512, 3n)).error).toBe(NBD_EIO);
    expect(await client.write(0, Buffer.alloc(512), 4n)).toBe(0);
    expect(fixture!.logs.some((log) => log.level === 'error' && /returned 10 bytes for 512/.test(log.message))).toBe(true);
  });

  it('FUA and NO_HOLE reach the backend; TRIM with FUA is followed by a flush before the reply', async () => {
    const client = await ready();
    client.sendRequest({ type: NBD_CMD_WRITE, flags: NBD_CMD_FLAG_FUA, handle: 1n, offset: 0, lengthBytes: 512, payload: Buffer.alloc(512, 9) });
    expect((await client.readReply()).error).toBe(0);
    client.sendRequest({ type: NBD_CMD_WRITE_ZEROES, flags: NBD_CMD_FLAG_NO_HOLE, handle: 2n, offset: 0, lengthBytes: 256 });
    expect((await client.readReply()).error).toBe(0);
    client.sendRequest({ type: NBD_CMD_TRIM, flags: NBD_CMD_FLAG_FUA, handle: 3n, offset: 1 * MIB, lengthBytes: 2 * MIB });
    expect((await client.readReply()).error).toBe(0);
    expect(fixture!.backend.calls).toEqual([
      { op: 'write', offsetBytes: 0, lengthBytes: 512, fua: true },
      { op: 'writeZeroes', offsetBytes: 0, lengthBytes: 256, fua: false, noHole: true },
      { op: 'trim', offsetBytes: 1 * MIB, lengthBytes: 2 * MIB },
      { op: 'flush' },
    ]);
    expect([...fixture!.backend.bytes.subarray(0, 512)]).toEqual([...Buffer.alloc(256), ...Buffer.alloc(256, 9)]);
  });
});
