// Proves: the fixed newstyle handshake answers every option as the spec says: LIST, INFO and GO with the information requested (export, block sizes, name, description), export-name matching, NBD_OPT_EXPORT_NAME with and without the 124 zeroes, ABORT, refusals that leave the session usable, and the transmission flags advertised.
import { afterEach, describe, expect, it } from 'vitest';
import {
  EXPORT_NAME_REPLY_ZEROES_BYTES, NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES, NBD_FLAG_SEND_FLUSH, NBD_FLAG_SEND_FUA, NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES, NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION, NBD_INFO_EXPORT, NBD_INFO_NAME, NBD_OPT_ABORT, NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST,
  NBD_OPT_STARTTLS, NBD_REP_ACK, NBD_REP_ERR_INVALID, NBD_REP_ERR_TOO_BIG, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_INFO,
  NBD_REP_SERVER, decodeInfo, encodeInfoRequest, type Info,
} from '../../src/daemon/nbd-protocol.js';
import { MIB } from '../../src/units.js';
import { startMemoryNbdServer, type MemoryNbdServer } from '../helpers/nbd-memory-backend.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';

const EXPORT_SIZE_BYTES = 4 * MIB;
const CLOSE_WAIT_MS = 2_000;
const FLAGS_ALWAYS = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;

let fixture: MemoryNbdServer | undefined;

afterEach(async () => {
  await fixture?.cleanup();
  fixture = undefined;
});

async function negotiating(options: Parameters<typeof startMemoryNbdServer>[0]): Promise<RawNbdClient> {
  fixture = await startMemoryNbdServer(options);
  const client = await RawNbdClient.connect({ path: fixture.socketPath });
  expect(await client.greet()).toBe(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  return client;
}

function infosOf(replies: { replyType: number; data: Buffer }[]): Info[] {
  return replies.filter((reply) => reply.replyType === NBD_REP_INFO).map((reply) => {
    const decoded = decodeInfo(reply.data);
    if (!decoded.ok) throw new Error(decoded.reason);
    return decoded.info;
  });
}

describe('NBD handshake options', () => {
  it('NBD_OPT_LIST names the export with its description; with data it is NBD_REP_ERR_INVALID', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, exportName: 'jraid0', description: 'RAID-5, 3 members' });
    client.sendOption(NBD_OPT_LIST);
    const replies = await client.readOptionReplies();
    expect(replies.map((reply) => reply.replyType)).toEqual([NBD_REP_SERVER, NBD_REP_ACK]);
    expect(replies[0]!.data.readUInt32BE(0)).toBe(6);
    expect(replies[0]!.data.subarray(4).toString()).toBe('jraid0RAID-5, 3 members');
    client.sendOption(NBD_OPT_LIST, Buffer.from('x'));
    expect((await client.readOptionReplies()).map((reply) => reply.replyType)).toEqual([NBD_REP_ERR_INVALID]);
  });

  it('NBD_OPT_INFO sends export, block sizes, and the name and description asked for; the session stays in negotiation', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, exportName: 'jraid0', description: 'RAID-6' });
    client.sendOption(NBD_OPT_INFO, encodeInfoRequest('jraid0', [NBD_INFO_NAME, NBD_INFO_DESCRIPTION, NBD_INFO_BLOCK_SIZE]));
    const replies = await client.readOptionReplies();
    expect(replies[replies.length - 1]!.replyType).toBe(NBD_REP_ACK);
    expect(infosOf(replies)).toEqual(expect.arrayContaining([
      { type: NBD_INFO_EXPORT, sizeBytes: BigInt(EXPORT_SIZE_BYTES), transmissionFlags: FLAGS_ALWAYS | NBD_FLAG_CAN_MULTI_CONN },
      { type: NBD_INFO_BLOCK_SIZE, sizes: { minimumBytes: 1, preferredBytes: 4096, maximumBytes: 32 * MIB } },
      { type: NBD_INFO_NAME, name: 'jraid0' },
      { type: NBD_INFO_DESCRIPTION, description: 'RAID-6' },
    ]));
    // Not asked for: no name or description; export and block sizes always.
    client.sendOption(NBD_OPT_INFO, encodeInfoRequest('', []));
    expect(infosOf(await client.readOptionReplies()).map((info) => info.type).sort()).toEqual([NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE]);
    client.sendOption(NBD_OPT_GO, encodeInfoRequest('', []));
    expect((await client.readOptionReplies()).pop()!.replyType).toBe(NBD_REP_ACK);
    expect(await client.write(0, Buffer.alloc(512, 1))).toBe(0);
  });

  it('a configured name is the only one served besides ""; without one, any name is', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, exportName: 'jraid0' });
    client.sendOption(NBD_OPT_INFO, encodeInfoRequest('jraid1', []));
    const refused = await client.readOptionReplies();
    expect(refused.map((reply) => reply.replyType)).toEqual([NBD_REP_ERR_UNKNOWN]);
    expect(refused[0]!.data.toString()).toMatch(/jraid1/);
    await fixture!.cleanup();
    const open = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES });
    open.sendOption(NBD_OPT_GO, encodeInfoRequest('anything at all', []));
    expect((await open.readOptionReplies()).pop()!.replyType).toBe(NBD_REP_ACK);
  });

  it('malformed INFO/GO data, STARTTLS, and option data past the limit are refused and negotiation goes on', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, limits: { optionDataBytesMax: 5000 } });
    client.sendOption(NBD_OPT_GO, Buffer.from('00000009abc0000', 'hex'));
    expect((await client.readOptionReplies()).map((reply) => reply.replyType)).toEqual([NBD_REP_ERR_INVALID]);
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.readOptionReplies()).map((reply) => reply.replyType)).toEqual([NBD_REP_ERR_UNSUP]);
    client.sendOption(NBD_OPT_INFO, Buffer.alloc(100_000));
    expect((await client.readOptionReplies()).map((reply) => reply.replyType)).toEqual([NBD_REP_ERR_TOO_BIG]);
    client.sendOption(NBD_OPT_GO, encodeInfoRequest('', []));
    expect((await client.readOptionReplies()).pop()!.replyType).toBe(NBD_REP_ACK);
    expect((await client.read(0, 512)).error).toBe(0);
  });

  it('NBD_OPT_EXPORT_NAME: size and flags, then 124 zeroes only if the client did not ask for none', async () => {
    for (const noZeroes of [true, false]) {
      const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, exportName: 'jraid0' });
      // greet() sent NO_ZEROES; a second connection shows the other case.
      const target = noZeroes ? client : await RawNbdClient.connect({ path: fixture!.socketPath });
      if (!noZeroes) await target.greet(NBD_FLAG_C_FIXED_NEWSTYLE);
      target.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('jraid0'));
      const reply = await target.readExactly(10 + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES_BYTES));
      expect(reply.readBigUInt64BE(0)).toBe(BigInt(EXPORT_SIZE_BYTES));
      expect(reply.readUInt16BE(8)).toBe(FLAGS_ALWAYS | NBD_FLAG_CAN_MULTI_CONN);
      expect(reply.subarray(10).every((byte) => byte === 0)).toBe(true);
      // Exactly that many bytes: the next thing on the wire is the reply to our first request.
      expect((await target.read(0, 512, 5n)).error).toBe(0);
      await fixture!.cleanup();
    }
  });

  it('NBD_OPT_EXPORT_NAME with an unknown name ends the session (it has no error reply)', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, exportName: 'jraid0' });
    client.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('other'));
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
    expect(client.unreadBytes).toBe(0);
  });

  it('NBD_OPT_ABORT is acknowledged, then the server closes', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES });
    client.sendOption(NBD_OPT_ABORT);
    expect((await client.readOptionReplies()).map((reply) => [reply.option, reply.replyType])).toEqual([[NBD_OPT_ABORT, NBD_REP_ACK]]);
    expect(await client.closesWithin(CLOSE_WAIT_MS)).toBe(true);
  });

  it('multiConn: false leaves NBD_FLAG_CAN_MULTI_CONN out', async () => {
    const client = await negotiating({ sizeBytes: EXPORT_SIZE_BYTES, multiConn: false });
    client.sendOption(NBD_OPT_GO, encodeInfoRequest('', []));
    const infos = infosOf(await client.readOptionReplies());
    expect(infos.find((info) => info.type === NBD_INFO_EXPORT)).toEqual({ type: NBD_INFO_EXPORT, sizeBytes: BigInt(EXPORT_SIZE_BYTES), transmissionFlags: FLAGS_ALWAYS });
  });
});
