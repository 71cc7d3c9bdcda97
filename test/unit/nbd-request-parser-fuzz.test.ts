// Proves: seeded random and mutated byte streams fed to an NBD connection never crash the server, never hang it, never reach the backend out of range or beyond the in-flight bound, and (for well-framed streams) answer every request exactly once with the error the checkpoint decides.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  NBD_CMD_BLOCK_STATUS, NBD_CMD_CACHE, NBD_CMD_DISC, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLUSH, NBD_CMD_READ,
  NBD_CMD_TRIM, NBD_CMD_WRITE, NBD_CMD_WRITE_ZEROES, NBD_EIO, NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_EXPORT_NAME, NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NBD_SIMPLE_REPLY_MAGIC,
  checkRequest, decodeOptionReply, encodeInfoRequest, encodeOptionHeader, encodeRequestHeader, isOptionReplyError,
  type RequestCheck, type RequestHeader,
} from '../../src/daemon/nbd-protocol.js';
import { NbdServer, type NbdLimits } from '../../src/daemon/nbd-server.js';
import { Rng } from '../../src/rng.js';
import { KIB } from '../../src/units.js';
import { MemoryNbdBackend } from '../helpers/nbd-memory-backend.js';

const ITERATIONS = Number(process.env.JRAID_FUZZ_ITERATIONS ?? 400);
// Override to replay or explore: JRAID_FUZZ_SEED=1234 npx vitest run test/unit/nbd-request-parser-fuzz.test.ts
const SEED = Number(process.env.JRAID_FUZZ_SEED ?? 0x0bd5eed);
const EXPORT_SIZE_BYTES = 1024 * KIB;
const SERVE_TIMEOUT_MS = 5_000;
// Small bounds so that streams of a few hundred kilobytes hit every one of them.
const LIMITS: Partial<NbdLimits> = {
  blockSizeMaxBytes: 64 * KIB,
  inflightRequestsMax: 4,
  connectionPayloadBytesMax: 64 * KIB,
  serverPayloadBytesMax: 96 * KIB,
  optionsPerConnectionMax: 16,
  closeLingerMs: 20,
};
const BLOCK_SIZE_MAX_BYTES = LIMITS.blockSizeMaxBytes!;

interface SentRequest {
  header: RequestHeader;
  check: RequestCheck;
}

/** A stream to feed, and (when every byte of it is well framed) the requests the server must answer. */
interface Script {
  bytes: Buffer;
  wellFramed: SentRequest[] | undefined;
}

function clientFlags(rng: Rng): Buffer {
  const flags = Buffer.alloc(4);
  flags.writeUInt32BE(rng.next() < 0.9 ? NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES : rng.int(2 ** 32), 0);
  return flags;
}

function go(): Buffer {
  return encodeOptionHeader(NBD_OPT_GO, encodeInfoRequest('', []));
}

function randomOffset(rng: Rng, lengthBytes: number): bigint {
  const choices: bigint[] = [
    0n, BigInt(rng.int(EXPORT_SIZE_BYTES)), BigInt(Math.max(0, EXPORT_SIZE_BYTES - lengthBytes)), BigInt(EXPORT_SIZE_BYTES - lengthBytes + 1),
    BigInt(EXPORT_SIZE_BYTES), 2n ** 53n, 2n ** 64n - 1n, BigInt(rng.int(2 ** 32)) * 4096n,
  ];
  const offset = rng.pick(choices);
  return offset < 0n ? 0n : offset;
}

/** Half the requests are valid reads and writes, so payloads pile up against the bounds; the rest probe every edge. */
function randomHeader(rng: Rng, handle: bigint): RequestHeader {
  if (rng.next() < 0.5) {
    const lengthBytes = 1 + rng.int(BLOCK_SIZE_MAX_BYTES);
    return { type: rng.pick([NBD_CMD_READ, NBD_CMD_WRITE]), flags: rng.pick([0, NBD_CMD_FLAG_FUA]), handle, offset: BigInt(rng.int(EXPORT_SIZE_BYTES - lengthBytes + 1)), lengthBytes };
  }
  const type = rng.pick([
    NBD_CMD_READ, NBD_CMD_READ, NBD_CMD_WRITE, NBD_CMD_WRITE, NBD_CMD_WRITE, NBD_CMD_FLUSH, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES,
    NBD_CMD_CACHE, NBD_CMD_BLOCK_STATUS, 9, 0xffff,
  ]);
  const flags = rng.next() < 0.85 ? rng.pick([0, 0, NBD_CMD_FLAG_FUA, NBD_CMD_FLAG_NO_HOLE, NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE]) : rng.int(0x10000);
  const lengthBytes = type === NBD_CMD_FLUSH && rng.next() < 0.8 ? 0 : rng.pick([
    0, 1, 512, 4096, 1 + rng.int(BLOCK_SIZE_MAX_BYTES), BLOCK_SIZE_MAX_BYTES, BLOCK_SIZE_MAX_BYTES + 1, rng.int(2 ** 32),
  ]);
  const offset = type === NBD_CMD_FLUSH && rng.next() < 0.8 ? 0n : randomOffset(rng, lengthBytes);
  return { type, flags, handle, offset, lengthBytes };
}

/** Header plus the payload a well-behaved client would send: WRITEs the server will read carry their bytes. */
function frame(rng: Rng, header: RequestHeader, check: RequestCheck): Buffer {
  const bytes = encodeRequestHeader(header);
  if (check.payloadBytes === 0) return bytes;
  return Buffer.concat([bytes, Buffer.alloc(check.payloadBytes, rng.int(256))]);
}

function mutate(rng: Rng, bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const flips = 1 + rng.int(3);
  for (let index = 0; index < flips; index++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
}

/** A transmission-phase script: requests, some mutated, some garbage between them. */
function transmissionScript(rng: Rng, prefix: Buffer[], wellFramed: boolean): Script {
  const parts = [...prefix];
  const sent: SentRequest[] = [];
  const count = 1 + rng.int(40);
  for (let index = 0; index < count; index++) {
    const header = randomHeader(rng, BigInt(index + 1));
    const check = checkRequest(header, { exportSizeBytes: EXPORT_SIZE_BYTES, blockSizeMaxBytes: BLOCK_SIZE_MAX_BYTES });
    const bytes = frame(rng, header, check);
    if (wellFramed || rng.next() < 0.6) {
      parts.push(bytes);
      sent.push({ header, check });
      if (check.disconnect) break;
    } else if (rng.next() < 0.7) {
      parts.push(mutate(rng, bytes));
    } else {
      parts.push(rng.bytes(rng.int(64)));
    }
  }
  if (rng.next() < 0.3) parts.push(encodeRequestHeader({ type: NBD_CMD_DISC, flags: 0, handle: 0n, offset: 0n, lengthBytes: 0 }));
  return { bytes: Buffer.concat(parts), wellFramed: wellFramed ? sent : undefined };
}

/** A handshake-phase script: random options (some valid), maybe ending in transmission. */
function handshakeScript(rng: Rng): Script {
  const parts = [rng.next() < 0.1 ? rng.bytes(4) : clientFlags(rng)];
  const count = rng.int(20);
  for (let index = 0; index < count; index++) {
    const option = rng.pick([NBD_OPT_LIST, NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_STRUCTURED_REPLY, NBD_OPT_EXPORT_NAME, 2, 5, 9, 10, 11, rng.int(2 ** 32)]);
    const data = rng.next() < 0.5 ? encodeInfoRequest(rng.pick(['', 'x', 'disk']), [rng.int(5)]) : rng.bytes(rng.pick([0, 1, 6, 20, 9000]));
    parts.push(rng.next() < 0.15 ? mutate(rng, encodeOptionHeader(option, data)) : encodeOptionHeader(option, data));
  }
  if (rng.next() < 0.5) return transmissionScript(rng, parts, false);
  return { bytes: Buffer.concat(parts), wellFramed: undefined };
}

function randomScript(rng: Rng): Script {
  const roll = rng.next();
  if (roll < 0.1) return { bytes: rng.bytes(rng.int(200)), wellFramed: undefined };
  if (roll < 0.3) return handshakeScript(rng);
  if (roll < 0.6) return transmissionScript(rng, [clientFlags(rng), go()], false);
  return transmissionScript(rng, [Buffer.from('00000003', 'hex'), go()], true);
}

/** A duplex standing in for a socket: the test pushes the client's bytes, and collects what the server writes. */
function fakeSocket(): { stream: Duplex; written: Buffer[] } {
  const written: Buffer[] = [];
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(Buffer.from(chunk));
      callback();
    },
  });
  return { stream, written };
}

async function feed(rng: Rng, stream: Duplex, bytes: Buffer): Promise<void> {
  let at = 0;
  while (at < bytes.length && !stream.destroyed) {
    const size = 1 + rng.int(rng.pick([16, 300, 9000]));
    stream.push(bytes.subarray(at, at + size));
    at += size;
    if (rng.next() < 0.3) await new Promise((resolve) => setImmediate(resolve));
  }
  if (!stream.destroyed) stream.push(null);
}

/** Checks the server's replies to a well-framed script: each answered once, with the checkpoint's error. */
function checkReplies(output: Buffer, sent: SentRequest[]): void {
  let at = 18; // greeting
  for (;;) {
    const decoded = decodeOptionReply(output.subarray(at));
    expect(decoded !== undefined && 'reply' in decoded).toBe(true);
    if (decoded === undefined || !('reply' in decoded)) return;
    at += decoded.sizeBytes;
    if (decoded.reply.replyType === NBD_REP_ACK) break;
    expect(isOptionReplyError(decoded.reply.replyType)).toBe(false);
  }
  const byHandle = new Map(sent.map((request) => [request.header.handle, request]));
  const answered = new Set<bigint>();
  while (at < output.length) {
    expect(output.length - at).toBeGreaterThanOrEqual(16);
    expect(output.readUInt32BE(at)).toBe(NBD_SIMPLE_REPLY_MAGIC);
    const error = output.readUInt32BE(at + 4);
    const handle = output.readBigUInt64BE(at + 8);
    at += 16;
    const request = byHandle.get(handle);
    expect(request, `reply for unknown handle ${handle}`).toBeDefined();
    expect(answered.has(handle), `second reply for handle ${handle}`).toBe(false);
    answered.add(handle);
    if (request!.check.error !== 0) expect(error).toBe(request!.check.error);
    else expect([0, NBD_EIO]).toContain(error);
    if (error === 0 && request!.header.type === NBD_CMD_READ) at += request!.header.lengthBytes;
  }
  expect(at).toBe(output.length);
  expect([...answered].sort()).toEqual(sent.map((request) => request.header.handle).sort());
}

describe('NBD request parser fuzz', () => {
  // Two connections per server, so the payload budget they share is contended too.
  it(`${ITERATIONS} seeded stream pairs (seed ${SEED})`, async () => {
    const master = new Rng(SEED);
    let requestsAnswered = 0;
    for (let iteration = 0; iteration < ITERATIONS; iteration++) {
      const seed = master.int(2 ** 32);
      const rng = new Rng(seed);
      const backend = new MemoryNbdBackend(EXPORT_SIZE_BYTES);
      backend.latency = async () => {
        for (let ticks = rng.int(8); ticks > 0; ticks--) await new Promise((resolve) => setImmediate(resolve));
      };
      if (rng.next() < 0.2) backend.failWith = () => (rng.next() < 0.3 ? (rng.next() < 0.5 ? Object.assign(new Error('injected'), { code: 'EIO' }) : new Error('surprise')) : undefined);
      const server = new NbdServer({ backend, limits: LIMITS });
      const clients = [0, 1].map(() => {
        const clientRng = new Rng(rng.int(2 ** 32));
        const script = randomScript(clientRng);
        const socket = fakeSocket();
        const served = server.serve(socket.stream);
        return { clientRng, script, socket, served };
      });
      await Promise.all(clients.map(({ clientRng, socket, script }) => feed(clientRng, socket.stream, script.bytes)));
      const timeout = new Promise((resolve) => setTimeout(() => resolve('hung'), SERVE_TIMEOUT_MS));
      const outcome = await Promise.race([Promise.all(clients.map(({ served }) => served)).then(() => 'closed'), timeout]);
      const context = `iteration ${iteration}, seed ${seed}`;
      expect(outcome, context).toBe('closed');
      expect(backend.violations, context).toEqual([]);
      expect(backend.activeMax, context).toBeLessThanOrEqual(2 * LIMITS.inflightRequestsMax!);
      expect(server.connectionCount, context).toBe(0);
      for (const { script, socket } of clients) {
        if (script.wellFramed === undefined) continue;
        checkReplies(Buffer.concat(socket.written), script.wellFramed);
        requestsAnswered += script.wellFramed.length;
      }
      await server.close();
    }
    expect(requestsAnswered).toBeGreaterThan(ITERATIONS * 4);
  }, 60_000);
});
