// Proves: the NBD codecs write the spec's exact bytes, every decoder inverts its encoder, malformed headers and option data are refused with a reason, and checkRequest answers every command/flag/range case as the spec says.
import { describe, expect, it } from 'vitest';
import {
  NBD_CMD_CACHE, NBD_CMD_DISC, NBD_CMD_FLAG_DF, NBD_CMD_FLAG_FAST_ZERO, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH,
  NBD_CMD_READ, NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_CMD_BLOCK_STATUS, NBD_EINVAL, NBD_ENOSPC, NBD_EIO,
  NBD_FLAG_FIXED_NEWSTYLE, NBD_FLAG_NO_ZEROES, NBD_INFO_BLOCK_SIZE, NBD_INFO_DESCRIPTION, NBD_INFO_EXPORT, NBD_INFO_NAME,
  NBD_OPT_GO, NBD_OPT_LIST, NBD_REP_ACK, NBD_REP_ERR_UNSUP, NBD_REP_SERVER, NBD_REQUEST_MAGIC, REQUEST_HEADER_SIZE_BYTES,
  SIMPLE_REPLY_HEADER_SIZE_BYTES, blockSizeConstraintsProblem, checkRequest, decodeInfo, decodeInfoRequest, decodeOptionHeader,
  decodeOptionReply, decodeRequestHeader, decodeSimpleReplyHeader, encodeExportNameReply, encodeGreeting, encodeInfoBlockSize,
  encodeInfoDescription, encodeInfoExport, encodeInfoName, encodeInfoRequest, encodeOptionHeader, encodeOptionReply,
  encodeRequestHeader, encodeServerReplyData, encodeSimpleReplyHeader, isOptionReplyError, type RequestHeader,
} from '../../src/daemon/nbd-protocol.js';
import { MIB } from '../../src/units.js';

const hex = (bytes: Buffer) => bytes.toString('hex');

describe('handshake codecs', () => {
  it('greeting is NBDMAGIC, IHAVEOPT and the 16-bit handshake flags', () => {
    expect(hex(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES))).toBe('4e42444d41474943' + '49484156454f5054' + '0003');
  });

  it('option header round-trips and refuses a bad magic', () => {
    const bytes = encodeOptionHeader(NBD_OPT_GO, Buffer.from('abc'));
    expect(hex(bytes)).toBe('49484156454f5054' + '00000007' + '00000003' + '616263');
    expect(decodeOptionHeader(bytes.subarray(0, 16))).toEqual({ ok: true, header: { option: NBD_OPT_GO, dataLengthBytes: 3 } });
    const bad = Buffer.from(bytes.subarray(0, 16));
    bad[0] ^= 1;
    const decoded = decodeOptionHeader(bad);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.reason).toMatch(/bad option magic/);
  });

  it('option reply has the reply magic and round-trips, with or without data', () => {
    const ack = encodeOptionReply(NBD_OPT_LIST, NBD_REP_ACK);
    expect(hex(ack)).toBe('0003e889045565a9' + '00000003' + '00000001' + '00000000');
    expect(decodeOptionReply(ack)).toEqual({ reply: { option: NBD_OPT_LIST, replyType: NBD_REP_ACK, data: Buffer.alloc(0) }, sizeBytes: 20 });
    const server = encodeOptionReply(NBD_OPT_LIST, NBD_REP_SERVER, encodeServerReplyData('disk', 'RAID-5'));
    const decoded = decodeOptionReply(server);
    expect(decoded && 'reply' in decoded && decoded.reply.data.toString('latin1')).toBe('\0\0\0\x04diskRAID-5');
    expect(decodeOptionReply(server.subarray(0, server.length - 1))).toBeUndefined();
    expect(isOptionReplyError(NBD_REP_ERR_UNSUP)).toBe(true);
    expect(isOptionReplyError(NBD_REP_ACK)).toBe(false);
  });

  it('NBD_OPT_EXPORT_NAME reply: size, flags, then 124 zeroes unless NO_ZEROES was negotiated', () => {
    const withZeroes = encodeExportNameReply(1 * MIB, 0x1234, false);
    expect(withZeroes.length).toBe(8 + 2 + 124);
    expect(hex(withZeroes.subarray(0, 10))).toBe('0000000000100000' + '1234');
    expect(withZeroes.subarray(10).every((byte) => byte === 0)).toBe(true);
    expect(encodeExportNameReply(1 * MIB, 0x1234, true).length).toBe(10);
  });

  it('INFO/GO request data round-trips, and every malformed shape is refused', () => {
    const data = encodeInfoRequest('disk', [NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE]);
    expect(hex(data)).toBe('00000004' + '6469736b' + '0002' + '0001' + '0003');
    expect(decodeInfoRequest(data)).toEqual({ ok: true, request: { name: Buffer.from('disk'), infoTypes: [NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE] } });
    expect(decodeInfoRequest(encodeInfoRequest('', []))).toEqual({ ok: true, request: { name: Buffer.alloc(0), infoTypes: [] } });
    const malformed: Buffer[] = [
      Buffer.alloc(5), // shorter than name length + count
      Buffer.concat([Buffer.from('000000ff', 'hex'), Buffer.from('ab0000', 'hex')]), // name overruns
      Buffer.concat([data, Buffer.from('00')]), // trailing byte
      data.subarray(0, data.length - 1), // a request cut in half
      Buffer.from('00000000' + '0005' + '0001', 'hex'), // count says 5, one present
    ];
    for (const bytes of malformed) expect(decodeInfoRequest(bytes).ok).toBe(false);
    const tooLong = encodeInfoRequest('x'.repeat(4097), []);
    expect(decodeInfoRequest(tooLong).ok).toBe(false);
  });

  it('information payloads have the lengths the spec fixes and decode back', () => {
    const exportInfo = encodeInfoExport(256 * MIB, 0x01cd);
    expect(hex(exportInfo)).toBe('0000' + '0000000010000000' + '01cd');
    expect(decodeInfo(exportInfo)).toEqual({ ok: true, info: { type: NBD_INFO_EXPORT, sizeBytes: BigInt(256 * MIB), transmissionFlags: 0x01cd } });
    const sizes = { minimumBytes: 1, preferredBytes: 4096, maximumBytes: 32 * MIB };
    const blockSize = encodeInfoBlockSize(sizes);
    expect(hex(blockSize)).toBe('0003' + '00000001' + '00001000' + '02000000');
    expect(decodeInfo(blockSize)).toEqual({ ok: true, info: { type: NBD_INFO_BLOCK_SIZE, sizes } });
    expect(decodeInfo(encodeInfoName('disk'))).toEqual({ ok: true, info: { type: NBD_INFO_NAME, name: 'disk' } });
    expect(decodeInfo(encodeInfoDescription('jraid RAID-6'))).toEqual({ ok: true, info: { type: NBD_INFO_DESCRIPTION, description: 'jraid RAID-6' } });
    expect(decodeInfo(exportInfo.subarray(0, 11)).ok).toBe(false);
    expect(decodeInfo(Buffer.from('0009ffff', 'hex'))).toEqual({ ok: true, info: { type: 'unknown', infoType: 9, payload: Buffer.from('ffff', 'hex') } });
  });

  it('block size constraints follow the spec rules', () => {
    expect(blockSizeConstraintsProblem({ minimumBytes: 1, preferredBytes: 4096, maximumBytes: 32 * MIB })).toBeUndefined();
    expect(blockSizeConstraintsProblem({ minimumBytes: 3, preferredBytes: 4096, maximumBytes: 32 * MIB })).toMatch(/minimum/);
    expect(blockSizeConstraintsProblem({ minimumBytes: 1, preferredBytes: 256, maximumBytes: 32 * MIB })).toMatch(/preferred/);
    expect(blockSizeConstraintsProblem({ minimumBytes: 512, preferredBytes: 4096, maximumBytes: 4096 + 1 })).toMatch(/multiple/);
    expect(blockSizeConstraintsProblem({ minimumBytes: 1, preferredBytes: 4096, maximumBytes: 2048 })).toMatch(/at least preferred/);
    expect(() => encodeInfoBlockSize({ minimumBytes: 1, preferredBytes: 100, maximumBytes: MIB })).toThrow(/assertion failed/);
  });
});

describe('transmission codecs', () => {
  const header: RequestHeader = { flags: NBD_CMD_FLAG_FUA, type: NBD_CMD_WRITE, handle: 0x0102030405060708n, offset: 0xfffffffffffff000n, lengthBytes: 4096 };

  it('request header has the spec layout and round-trips, including offsets past 2^53', () => {
    const bytes = encodeRequestHeader(header);
    expect(bytes.length).toBe(REQUEST_HEADER_SIZE_BYTES);
    expect(hex(bytes)).toBe('25609513' + '0001' + '0001' + '0102030405060708' + 'fffffffffffff000' + '00001000');
    expect(decodeRequestHeader(bytes)).toEqual({ ok: true, header });
  });

  it('a request header with any bit of the magic wrong is refused', () => {
    const bytes = encodeRequestHeader(header);
    for (let bit = 0; bit < 32; bit++) {
      const bad = Buffer.from(bytes);
      bad.writeUInt32BE((NBD_REQUEST_MAGIC ^ (1 << bit)) >>> 0, 0);
      const decoded = decodeRequestHeader(bad);
      expect(decoded.ok).toBe(false);
      if (!decoded.ok) expect(decoded.reason).toMatch(/bad request magic/);
    }
    expect(() => decodeRequestHeader(bytes.subarray(0, 27))).toThrow(/assertion failed/);
  });

  it('simple reply header round-trips and only carries errors the spec defines', () => {
    const bytes = encodeSimpleReplyHeader(NBD_EIO, 7n);
    expect(bytes.length).toBe(SIMPLE_REPLY_HEADER_SIZE_BYTES);
    expect(hex(bytes)).toBe('67446698' + '00000005' + '0000000000000007');
    expect(decodeSimpleReplyHeader(bytes)).toEqual({ ok: true, header: { error: NBD_EIO, handle: 7n } });
    expect(() => encodeSimpleReplyHeader(2, 1n)).toThrow(/assertion failed/);
  });
});

describe('checkRequest: the one checkpoint', () => {
  const limits = { exportSizeBytes: 64 * MIB, blockSizeMaxBytes: 32 * MIB };
  const request = (type: number, offset: number | bigint, lengthBytes: number, flags = 0): RequestHeader => ({ type, flags, handle: 1n, offset: BigInt(offset), lengthBytes });

  // [what, request, error, payload bytes to consume, disconnect]
  const table: [string, RequestHeader, number, number, boolean][] = [
    ['read inside', request(NBD_CMD_READ, 0, 4096), 0, 0, false],
    ['read ending exactly at the end', request(NBD_CMD_READ, 64 * MIB - 1, 1), 0, 0, false],
    ['read past the end', request(NBD_CMD_READ, 64 * MIB - 1, 2), NBD_EINVAL, 0, false],
    ['read at an offset past 2^64 - 2^32', request(NBD_CMD_READ, 0xffffffffffffffffn, 1), NBD_EINVAL, 0, false],
    ['read of length 0', request(NBD_CMD_READ, 0, 0), NBD_EINVAL, 0, false],
    ['read over the maximum', request(NBD_CMD_READ, 0, 32 * MIB + 1), NBD_EINVAL, 0, false],
    ['read with FUA (valid on every command)', request(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_FUA), 0, 0, false],
    ['read with DF (never advertised)', request(NBD_CMD_READ, 0, 512, NBD_CMD_FLAG_DF), NBD_EINVAL, 0, false],
    ['write inside with FUA', request(NBD_CMD_WRITE, 4096, 4096, NBD_CMD_FLAG_FUA), 0, 4096, false],
    ['write of the maximum', request(NBD_CMD_WRITE, 0, 32 * MIB), 0, 32 * MIB, false],
    ['write past the end: ENOSPC, payload consumed', request(NBD_CMD_WRITE, 64 * MIB - 4096, 8192), NBD_ENOSPC, 8192, false],
    ['write with NO_HOLE: EINVAL, payload consumed', request(NBD_CMD_WRITE, 0, 512, NBD_CMD_FLAG_NO_HOLE), NBD_EINVAL, 512, false],
    ['write over the maximum: EINVAL and disconnect', request(NBD_CMD_WRITE, 0, 32 * MIB + 1), NBD_EINVAL, 0, true],
    ['write of length 0', request(NBD_CMD_WRITE, 0, 0), NBD_EINVAL, 0, false],
    ['flush', request(NBD_CMD_FLUSH, 0, 0), 0, 0, false],
    ['flush with FUA', request(NBD_CMD_FLUSH, 0, 0, NBD_CMD_FLAG_FUA), 0, 0, false],
    ['flush with an offset', request(NBD_CMD_FLUSH, 512, 0), NBD_EINVAL, 0, false],
    ['flush with a length', request(NBD_CMD_FLUSH, 0, 512), NBD_EINVAL, 0, false],
    ['trim inside', request(NBD_CMD_TRIM, 0, 4096), 0, 0, false],
    ['trim longer than the maximum (not bounded by it)', request(NBD_CMD_TRIM, 0, 64 * MIB), 0, 0, false],
    ['trim past the end', request(NBD_CMD_TRIM, 1, 64 * MIB), NBD_EINVAL, 0, false],
    ['write zeroes with FUA and NO_HOLE', request(NBD_CMD_WRITE_ZEROES, 0, 4096, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE), 0, 0, false],
    ['write zeroes past the end', request(NBD_CMD_WRITE_ZEROES, 64 * MIB, 1), NBD_ENOSPC, 0, false],
    ['write zeroes over the maximum', request(NBD_CMD_WRITE_ZEROES, 0, 32 * MIB + 1), NBD_EINVAL, 0, false],
    ['write zeroes with FAST_ZERO (never advertised)', request(NBD_CMD_WRITE_ZEROES, 0, 512, NBD_CMD_FLAG_FAST_ZERO), NBD_EINVAL, 0, false],
    ['disc', request(NBD_CMD_DISC, 0, 0), 0, 0, false],
    ['cache (never advertised)', request(NBD_CMD_CACHE, 0, 512), NBD_EINVAL, 0, false],
    ['block status (no metadata context)', request(NBD_CMD_BLOCK_STATUS, 0, 512), NBD_EINVAL, 0, false],
    ['unknown command 99', request(99, 0, 512), NBD_EINVAL, 0, false],
    ['unknown flag bit 15', request(NBD_CMD_READ, 0, 512, 0x8000), NBD_EINVAL, 0, false],
  ];

  for (const [what, header, error, payloadBytes, disconnect] of table) {
    it(what, () => {
      const check = checkRequest(header, limits);
      expect({ error: check.error, payloadBytes: check.payloadBytes, disconnect: check.disconnect }).toEqual({ error, payloadBytes, disconnect });
      if (error !== 0) expect(check.reason).toBeTruthy();
    });
  }
});
