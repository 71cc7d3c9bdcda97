// The NBD wire format (NetworkBlockDevice/nbd doc/proto.md): constants and pure codecs for the
// fixed newstyle handshake and the transmission phase with simple replies. No I/O here: the
// server (nbd-server.ts) feeds bytes in and writes the buffers these functions return.
// Every integer on the wire is big-endian.

import { assert } from '../units.js';

// --- Magics -------------------------------------------------------------------------------

/** 'NBDMAGIC': the first 8 bytes the server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': newstyle greeting, and the prefix of every client option. */
export const NBD_OPTION_MAGIC = 0x49484156454f5054n;
/** Prefix of every fixed-newstyle option reply. */
export const NBD_OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;

// --- Sizes of fixed parts -----------------------------------------------------------------

/** NBDMAGIC (8) + IHAVEOPT (8) + handshake flags (2). */
export const GREETING_SIZE_BYTES = 18;
export const CLIENT_FLAGS_SIZE_BYTES = 4;
/** IHAVEOPT (8) + option (4) + data length (4). */
export const OPTION_HEADER_SIZE_BYTES = 16;
/** Reply magic (8) + option (4) + reply type (4) + data length (4). */
export const OPTION_REPLY_HEADER_SIZE_BYTES = 20;
/** Magic (4) + flags (2) + type (2) + handle (8) + offset (8) + length (4). */
export const REQUEST_HEADER_SIZE_BYTES = 28;
/** Magic (4) + error (4) + handle (8). */
export const SIMPLE_REPLY_HEADER_SIZE_BYTES = 16;
/** Reserved zeroes after the NBD_OPT_EXPORT_NAME reply unless NBD_FLAG_C_NO_ZEROES. */
export const EXPORT_NAME_REPLY_ZEROES_BYTES = 124;
/** The spec's limit on every string (export names, descriptions, messages). */
export const NBD_STRING_BYTES_MAX = 4096;

// --- Handshake flags (server, 16 bits) and client flags (32 bits) -------------------------

export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// --- Transmission flags (16 bits) ---------------------------------------------------------

export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

// --- Options ------------------------------------------------------------------------------

export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;

// --- Option reply types -------------------------------------------------------------------

export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const NBD_REP_FLAG_ERROR = 0x8000_0000;
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1;
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2;
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3;
export const NBD_REP_ERR_PLATFORM = NBD_REP_FLAG_ERROR + 4;
export const NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR + 5;
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6;
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = NBD_REP_FLAG_ERROR + 8;
export const NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR + 9;

export function isOptionReplyError(replyType: number): boolean {
  return replyType >= NBD_REP_FLAG_ERROR;
}

// --- Information types (NBD_REP_INFO payloads) --------------------------------------------

export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// --- Commands and command flags -----------------------------------------------------------

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;
export const NBD_CMD_RESIZE = 8;

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// --- Error values (the only ones the spec allows in a reply) ------------------------------

export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

export const NBD_ERRORS: ReadonlySet<number> = new Set([
  NBD_EPERM, NBD_EIO, NBD_ENOMEM, NBD_EINVAL, NBD_ENOSPC, NBD_EOVERFLOW, NBD_ENOTSUP, NBD_ESHUTDOWN,
]);

// --- Handshake codecs ---------------------------------------------------------------------

export function encodeGreeting(handshakeFlags: number): Buffer {
  assert(handshakeFlags >= 0 && handshakeFlags <= 0xffff, 'handshake flags fit 16 bits');
  const out = Buffer.alloc(GREETING_SIZE_BYTES);
  out.writeBigUInt64BE(NBD_MAGIC, 0);
  out.writeBigUInt64BE(NBD_OPTION_MAGIC, 8);
  out.writeUInt16BE(handshakeFlags, 16);
  return out;
}

export interface OptionHeader {
  option: number;
  dataLengthBytes: number;
}

export type OptionHeaderResult = { ok: true; header: OptionHeader } | { ok: false; reason: string };

export function decodeOptionHeader(bytes: Buffer): OptionHeaderResult {
  assert(bytes.length === OPTION_HEADER_SIZE_BYTES, 'option header is 16 bytes');
  const magic = bytes.readBigUInt64BE(0);
  if (magic !== NBD_OPTION_MAGIC) return { ok: false, reason: `bad option magic 0x${magic.toString(16)}` };
  return { ok: true, header: { option: bytes.readUInt32BE(8), dataLengthBytes: bytes.readUInt32BE(12) } };
}

export function encodeOptionHeader(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(OPTION_HEADER_SIZE_BYTES + data.length);
  out.writeBigUInt64BE(NBD_OPTION_MAGIC, 0);
  out.writeUInt32BE(option, 8);
  out.writeUInt32BE(data.length, 12);
  data.copy(out, OPTION_HEADER_SIZE_BYTES);
  return out;
}

export function encodeOptionReply(option: number, replyType: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(OPTION_REPLY_HEADER_SIZE_BYTES + data.length);
  out.writeBigUInt64BE(NBD_OPTION_REPLY_MAGIC, 0);
  out.writeUInt32BE(option, 8);
  out.writeUInt32BE(replyType, 12);
  out.writeUInt32BE(data.length, 16);
  data.copy(out, OPTION_REPLY_HEADER_SIZE_BYTES);
  return out;
}

export interface OptionReply {
  option: number;
  replyType: number;
  data: Buffer;
}

/** Decodes one option reply at the start of `bytes`; undefined when more bytes are needed. Test clients use it. */
export function decodeOptionReply(bytes: Buffer): { reply: OptionReply; sizeBytes: number } | { error: string } | undefined {
  if (bytes.length < OPTION_REPLY_HEADER_SIZE_BYTES) return undefined;
  const magic = bytes.readBigUInt64BE(0);
  if (magic !== NBD_OPTION_REPLY_MAGIC) return { error: `bad option reply magic 0x${magic.toString(16)}` };
  const dataLengthBytes = bytes.readUInt32BE(16);
  const sizeBytes = OPTION_REPLY_HEADER_SIZE_BYTES + dataLengthBytes;
  if (bytes.length < sizeBytes) return undefined;
  return {
    reply: { option: bytes.readUInt32BE(8), replyType: bytes.readUInt32BE(12), data: Buffer.from(bytes.subarray(OPTION_REPLY_HEADER_SIZE_BYTES, sizeBytes)) },
    sizeBytes,
  };
}

/** The reply that ends a successful NBD_OPT_EXPORT_NAME (which has no error path). */
export function encodeExportNameReply(sizeBytes: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  assertExportSize(sizeBytes);
  const out = Buffer.alloc(8 + 2 + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES_BYTES));
  out.writeBigUInt64BE(BigInt(sizeBytes), 0);
  out.writeUInt16BE(transmissionFlags, 8);
  return out;
}

/** NBD_OPT_INFO / NBD_OPT_GO data: the export name and the information types the client asks for. */
export interface InfoRequest {
  name: Buffer;
  infoTypes: number[];
}

export type InfoRequestResult = { ok: true; request: InfoRequest } | { ok: false; reason: string };

export function decodeInfoRequest(data: Buffer): InfoRequestResult {
  if (data.length < 6) return { ok: false, reason: `option data of ${data.length} bytes is shorter than 6` };
  const nameLengthBytes = data.readUInt32BE(0);
  if (nameLengthBytes > data.length - 6) return { ok: false, reason: `name length ${nameLengthBytes} overruns option data of ${data.length} bytes` };
  if (nameLengthBytes > NBD_STRING_BYTES_MAX) return { ok: false, reason: `name of ${nameLengthBytes} bytes is longer than ${NBD_STRING_BYTES_MAX}` };
  const countAt = 4 + nameLengthBytes;
  const count = data.readUInt16BE(countAt);
  if (data.length !== countAt + 2 + 2 * count) {
    return { ok: false, reason: `${count} information requests do not fill the ${data.length - countAt - 2} remaining bytes` };
  }
  const infoTypes: number[] = [];
  for (let index = 0; index < count; index++) infoTypes.push(data.readUInt16BE(countAt + 2 + 2 * index));
  return { ok: true, request: { name: Buffer.from(data.subarray(4, countAt)), infoTypes } };
}

export function encodeInfoRequest(name: string, infoTypes: readonly number[]): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const out = Buffer.alloc(4 + nameBytes.length + 2 + 2 * infoTypes.length);
  out.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(out, 4);
  out.writeUInt16BE(infoTypes.length, 4 + nameBytes.length);
  infoTypes.forEach((type, index) => out.writeUInt16BE(type, 4 + nameBytes.length + 2 + 2 * index));
  return out;
}

/** NBD_REP_SERVER data: name length, name, then an optional human-readable description. */
export function encodeServerReplyData(name: string, description = ''): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const descriptionBytes = Buffer.from(description, 'utf8');
  assertNbdString(nameBytes, 'export name');
  assertNbdString(descriptionBytes, 'export description');
  const out = Buffer.alloc(4 + nameBytes.length + descriptionBytes.length);
  out.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(out, 4);
  descriptionBytes.copy(out, 4 + nameBytes.length);
  return out;
}

export function encodeInfoExport(sizeBytes: number, transmissionFlags: number): Buffer {
  assertExportSize(sizeBytes);
  const out = Buffer.alloc(12);
  out.writeUInt16BE(NBD_INFO_EXPORT, 0);
  out.writeBigUInt64BE(BigInt(sizeBytes), 2);
  out.writeUInt16BE(transmissionFlags, 10);
  return out;
}

export interface BlockSizeConstraints {
  minimumBytes: number;
  preferredBytes: number;
  maximumBytes: number;
}

/** Checks the spec's rules for advertised block sizes (section "Block size constraints"). */
export function blockSizeConstraintsProblem(sizes: BlockSizeConstraints): string | undefined {
  const { minimumBytes, preferredBytes, maximumBytes } = sizes;
  const powerOfTwo = (value: number) => Number.isSafeInteger(value) && value > 0 && (value & (value - 1)) === 0;
  if (!powerOfTwo(minimumBytes) || minimumBytes > 65536) return `minimum ${minimumBytes} must be a power of 2 no larger than 65536`;
  if (!powerOfTwo(preferredBytes) || preferredBytes < Math.max(minimumBytes, 512)) return `preferred ${preferredBytes} must be a power of 2 at least max(minimum, 512)`;
  if (!Number.isSafeInteger(maximumBytes) || maximumBytes > 0xffffffff) return `maximum ${maximumBytes} must fit 32 bits`;
  if (maximumBytes !== 0xffffffff && maximumBytes % minimumBytes !== 0) return `maximum ${maximumBytes} must be a multiple of minimum ${minimumBytes}`;
  if (maximumBytes < preferredBytes) return `maximum ${maximumBytes} must be at least preferred ${preferredBytes}`;
  return undefined;
}

export function encodeInfoBlockSize(sizes: BlockSizeConstraints): Buffer {
  const problem = blockSizeConstraintsProblem(sizes);
  assert(problem === undefined, `block size constraints: ${problem}`);
  const out = Buffer.alloc(14);
  out.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  out.writeUInt32BE(sizes.minimumBytes, 2);
  out.writeUInt32BE(sizes.preferredBytes, 6);
  out.writeUInt32BE(sizes.maximumBytes, 10);
  return out;
}

export function encodeInfoName(name: string): Buffer {
  return encodeInfoString(NBD_INFO_NAME, name, 'export name');
}

export function encodeInfoDescription(description: string): Buffer {
  return encodeInfoString(NBD_INFO_DESCRIPTION, description, 'export description');
}

function encodeInfoString(infoType: number, text: string, what: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  assertNbdString(bytes, what);
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(infoType, 0);
  bytes.copy(out, 2);
  return out;
}

/** A decoded NBD_REP_INFO payload; unknown types are kept raw, as the spec tells clients to ignore them. */
export type Info =
  | { type: typeof NBD_INFO_EXPORT; sizeBytes: bigint; transmissionFlags: number }
  | { type: typeof NBD_INFO_BLOCK_SIZE; sizes: BlockSizeConstraints }
  | { type: typeof NBD_INFO_NAME; name: string }
  | { type: typeof NBD_INFO_DESCRIPTION; description: string }
  | { type: 'unknown'; infoType: number; payload: Buffer };

export function decodeInfo(data: Buffer): { ok: true; info: Info } | { ok: false; reason: string } {
  if (data.length < 2) return { ok: false, reason: 'information reply shorter than its 2-byte type' };
  const infoType = data.readUInt16BE(0);
  const expectLength = (length: number) => data.length === length ? undefined : `information type ${infoType} must be ${length} bytes, got ${data.length}`;
  switch (infoType) {
    case NBD_INFO_EXPORT: {
      const problem = expectLength(12);
      if (problem) return { ok: false, reason: problem };
      return { ok: true, info: { type: NBD_INFO_EXPORT, sizeBytes: data.readBigUInt64BE(2), transmissionFlags: data.readUInt16BE(10) } };
    }
    case NBD_INFO_BLOCK_SIZE: {
      const problem = expectLength(14);
      if (problem) return { ok: false, reason: problem };
      return {
        ok: true,
        info: { type: NBD_INFO_BLOCK_SIZE, sizes: { minimumBytes: data.readUInt32BE(2), preferredBytes: data.readUInt32BE(6), maximumBytes: data.readUInt32BE(10) } },
      };
    }
    case NBD_INFO_NAME:
      return { ok: true, info: { type: NBD_INFO_NAME, name: data.subarray(2).toString('utf8') } };
    case NBD_INFO_DESCRIPTION:
      return { ok: true, info: { type: NBD_INFO_DESCRIPTION, description: data.subarray(2).toString('utf8') } };
    default:
      return { ok: true, info: { type: 'unknown', infoType, payload: Buffer.from(data.subarray(2)) } };
  }
}

// --- Transmission codecs ------------------------------------------------------------------

export interface RequestHeader {
  flags: number;
  type: number;
  /** Opaque to the server: echoed back in the reply. */
  handle: bigint;
  /** Unsigned 64 bits on the wire: kept as a bigint so values past 2^53 are not silently rounded. */
  offset: bigint;
  lengthBytes: number;
}

export type RequestHeaderResult = { ok: true; header: RequestHeader } | { ok: false; reason: string };

export function decodeRequestHeader(bytes: Buffer): RequestHeaderResult {
  assert(bytes.length === REQUEST_HEADER_SIZE_BYTES, 'request header is 28 bytes');
  const magic = bytes.readUInt32BE(0);
  if (magic !== NBD_REQUEST_MAGIC) return { ok: false, reason: `bad request magic 0x${magic.toString(16)}` };
  return {
    ok: true,
    header: {
      flags: bytes.readUInt16BE(4),
      type: bytes.readUInt16BE(6),
      handle: bytes.readBigUInt64BE(8),
      offset: bytes.readBigUInt64BE(16),
      lengthBytes: bytes.readUInt32BE(24),
    },
  };
}

export function encodeRequestHeader(header: RequestHeader): Buffer {
  const out = Buffer.alloc(REQUEST_HEADER_SIZE_BYTES);
  out.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  out.writeUInt16BE(header.flags, 4);
  out.writeUInt16BE(header.type, 6);
  out.writeBigUInt64BE(header.handle, 8);
  out.writeBigUInt64BE(header.offset, 16);
  out.writeUInt32BE(header.lengthBytes, 24);
  return out;
}

export function encodeSimpleReplyHeader(error: number, handle: bigint): Buffer {
  assert(error === 0 || NBD_ERRORS.has(error), `reply error ${error} is one the spec defines`);
  const out = Buffer.alloc(SIMPLE_REPLY_HEADER_SIZE_BYTES);
  out.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  out.writeUInt32BE(error, 4);
  out.writeBigUInt64BE(handle, 8);
  return out;
}

export interface SimpleReplyHeader {
  error: number;
  handle: bigint;
}

export function decodeSimpleReplyHeader(bytes: Buffer): { ok: true; header: SimpleReplyHeader } | { ok: false; reason: string } {
  assert(bytes.length === SIMPLE_REPLY_HEADER_SIZE_BYTES, 'simple reply header is 16 bytes');
  const magic = bytes.readUInt32BE(0);
  if (magic !== NBD_SIMPLE_REPLY_MAGIC) return { ok: false, reason: `bad reply magic 0x${magic.toString(16)}` };
  return { ok: true, header: { error: bytes.readUInt32BE(4), handle: bytes.readBigUInt64BE(8) } };
}

// --- The one checkpoint for every request -------------------------------------------------

/** Flags each command accepts. FUA is valid on every command once NBD_FLAG_SEND_FUA is advertised. */
const ALLOWED_FLAGS: ReadonlyMap<number, number> = new Map([
  [NBD_CMD_READ, NBD_CMD_FLAG_FUA],
  [NBD_CMD_WRITE, NBD_CMD_FLAG_FUA],
  [NBD_CMD_DISC, NBD_CMD_FLAG_FUA],
  [NBD_CMD_FLUSH, NBD_CMD_FLAG_FUA],
  [NBD_CMD_TRIM, NBD_CMD_FLAG_FUA],
  [NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE],
]);

/** Commands whose length is bounded by the advertised maximum block size (the spec lists these; TRIM is not one). */
const LENGTH_BOUNDED_COMMANDS: ReadonlySet<number> = new Set([NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES]);

/** Commands that write: past the end of the export they fail with ENOSPC, as the spec says; others with EINVAL. */
const WRITING_COMMANDS: ReadonlySet<number> = new Set([NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES]);

export interface RequestCheck {
  /** 0: run the command. Otherwise reply with this error and never call the backend. */
  error: number;
  /** Bytes of payload that follow the header and must be consumed (received or discarded) before the next header. */
  payloadBytes: number;
  /** The stream can no longer be trusted: reply, then close the connection without reading further. */
  disconnect: boolean;
  reason?: string;
}

export interface RequestLimits {
  exportSizeBytes: number;
  blockSizeMaxBytes: number;
}

/**
 * The checkpoint's outcomes, in the order the rules are tried: the first rule a request breaks
 * decides its reply. Numbers, so the server judges every request without allocating.
 */
export const REQUEST_OK = 0;
/** A WRITE longer than the maximum block size: EINVAL, and the connection closes (see requestRule). */
export const REQUEST_WRITE_TOO_LONG = 1;
export const REQUEST_UNKNOWN_COMMAND = 2;
export const REQUEST_BAD_FLAGS = 3;
export const REQUEST_FLUSH_WITH_RANGE = 4;
export const REQUEST_ZERO_LENGTH = 5;
export const REQUEST_TOO_LONG = 6;
export const REQUEST_PAST_END = 7;

/**
 * Decides, from the header alone, whether a request may run; returns the first rule it breaks
 * (REQUEST_OK when none). `offsetBytes` is the 64-bit offset as a number: above 2^53 it may be
 * rounded, which changes nothing, as every export ends below 2^53.
 *
 * A WRITE longer than the maximum block size is answered EINVAL and closes the connection: its
 * length field is what tells us where the next header starts, and a client that broke the
 * advertised limit (or a stream that lost sync) gives no reason to trust it, so reading and
 * discarding up to 4 GiB on its word would only delay the inevitable. The spec allows this hard
 * disconnect for lengths above 2^25.
 */
export function requestRule(type: number, flags: number, offsetBytes: number, lengthBytes: number, limits: RequestLimits): number {
  if (type === NBD_CMD_WRITE && lengthBytes > limits.blockSizeMaxBytes) return REQUEST_WRITE_TOO_LONG;
  const allowedFlags = ALLOWED_FLAGS.get(type);
  if (allowedFlags === undefined) return REQUEST_UNKNOWN_COMMAND;
  if ((flags & ~allowedFlags) !== 0) return REQUEST_BAD_FLAGS;
  if (type === NBD_CMD_DISC) return REQUEST_OK;
  if (type === NBD_CMD_FLUSH) return offsetBytes === 0 && lengthBytes === 0 ? REQUEST_OK : REQUEST_FLUSH_WITH_RANGE;
  if (lengthBytes === 0) return REQUEST_ZERO_LENGTH;
  if (LENGTH_BOUNDED_COMMANDS.has(type) && lengthBytes > limits.blockSizeMaxBytes) return REQUEST_TOO_LONG;
  // Exact below 2^53; at or above it the sum is at least 2^53 too, so still past the end.
  if (offsetBytes + lengthBytes > limits.exportSizeBytes) return REQUEST_PAST_END;
  return REQUEST_OK;
}

/** The error a request that broke `rule` is answered with (0 for REQUEST_OK). */
export function requestRuleError(rule: number, type: number): number {
  if (rule === REQUEST_OK) return 0;
  // The spec: a write past the end fails with ENOSPC; everything else refused is EINVAL.
  if (rule === REQUEST_PAST_END && WRITING_COMMANDS.has(type)) return NBD_ENOSPC;
  return NBD_EINVAL;
}

/** Why a request was refused, for the log (only ever built for a refusal). */
export function requestRuleReason(rule: number, header: RequestHeader, limits: RequestLimits): string {
  const { type, flags, lengthBytes } = header;
  switch (rule) {
    case REQUEST_WRITE_TOO_LONG: return `write of ${lengthBytes} bytes exceeds the maximum ${limits.blockSizeMaxBytes}`;
    case REQUEST_UNKNOWN_COMMAND: return `unsupported command ${type}`;
    case REQUEST_BAD_FLAGS: return `command ${type} does not accept flags 0x${(flags & ~(ALLOWED_FLAGS.get(type) ?? 0)).toString(16)}`;
    case REQUEST_FLUSH_WITH_RANGE: return 'flush with nonzero offset or length';
    case REQUEST_ZERO_LENGTH: return `command ${type} with length 0`;
    case REQUEST_TOO_LONG: return `command ${type} of ${lengthBytes} bytes exceeds the maximum ${limits.blockSizeMaxBytes}`;
    case REQUEST_PAST_END: return `${lengthBytes} bytes at ${header.offset} run past the end (${limits.exportSizeBytes})`;
    default: assert(false, `request rule ${rule} is a refusal`);
  }
}

/** The checkpoint for one decoded header, with the reason spelled out: what tests and tools use. */
export function checkRequest(header: RequestHeader, limits: RequestLimits): RequestCheck {
  const rule = requestRule(header.type, header.flags, Number(header.offset), header.lengthBytes, limits);
  const error = requestRuleError(rule, header.type);
  const disconnect = rule === REQUEST_WRITE_TOO_LONG;
  const payloadBytes = header.type === NBD_CMD_WRITE && !disconnect ? header.lengthBytes : 0;
  if (rule === REQUEST_OK) return { error, payloadBytes, disconnect };
  return { error, payloadBytes, disconnect, reason: requestRuleReason(rule, header, limits) };
}

// --- Helpers ------------------------------------------------------------------------------

function assertExportSize(sizeBytes: number): void {
  assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0, `export size ${sizeBytes} is a safe non-negative integer`);
}

function assertNbdString(bytes: Buffer, what: string): void {
  assert(bytes.length <= NBD_STRING_BYTES_MAX, `${what} of ${bytes.length} bytes fits the ${NBD_STRING_BYTES_MAX}-byte string limit`);
  assert(!bytes.includes(0), `${what} contains no NUL`);
}
