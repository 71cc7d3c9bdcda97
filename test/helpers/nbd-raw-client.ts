// A raw NBD client for tests that must send what real clients never would: it speaks the
// protocol byte by byte, so a test can break it at any point and see exactly what comes back.

import net from 'node:net';
import {
  CLIENT_FLAGS_SIZE_BYTES, GREETING_SIZE_BYTES, NBD_CMD_DISC, NBD_CMD_READ, NBD_CMD_WRITE, NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES, NBD_MAGIC, NBD_OPTION_MAGIC, NBD_OPT_GO, NBD_REP_ACK, NBD_REP_INFO, OPTION_REPLY_HEADER_SIZE_BYTES,
  SIMPLE_REPLY_HEADER_SIZE_BYTES, decodeInfo, decodeOptionReply, decodeSimpleReplyHeader, encodeInfoRequest,
  encodeOptionHeader, encodeRequestHeader, isOptionReplyError, type Info, type OptionReply,
} from '../../src/daemon/nbd-protocol.js';

const READ_TIMEOUT_MS = 5_000;

export class RawNbdClient {
  private readonly socket: net.Socket;
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.bufferedBytes += chunk.length;
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => {
      this.ended = true;
      this.wake?.();
      resolve();
    }));
  }

  static connect(target: { path: string } | { host: string; port: number }): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? net.connect(target.path) : net.connect(target.port, target.host);
      socket.once('connect', () => resolve(new RawNbdClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Exactly `count` bytes; rejects if the server closes (or stays silent) first. */
  async readExactly(count: number, timeoutMs = READ_TIMEOUT_MS): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.bufferedBytes < count) {
      if (this.ended) throw new Error(`connection closed with ${this.bufferedBytes} of ${count} bytes`);
      const remainingMs = deadline - Date.now();
      if (remainingMs <= 0) throw new Error(`timed out waiting for ${count} bytes (have ${this.bufferedBytes})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remainingMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const all = Buffer.concat(this.chunks);
    this.chunks.length = 0;
    if (all.length > count) this.chunks.push(all.subarray(count));
    this.bufferedBytes = all.length - count;
    return all.subarray(0, count);
  }

  /** Resolves true when the server closes within the timeout, having sent nothing more. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    const timer = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs));
    return Promise.race([this.closed.then(() => true as const), timer]);
  }

  get unreadBytes(): number {
    return this.bufferedBytes;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Half-closes: the server sees end of input but can still reply. */
  endWriting(): void {
    this.socket.end();
  }

  /** Reads the greeting and answers with client flags; returns the handshake flags. */
  async greet(clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES): Promise<number> {
    const greeting = await this.readExactly(GREETING_SIZE_BYTES);
    if (greeting.readBigUInt64BE(0) !== NBD_MAGIC || greeting.readBigUInt64BE(8) !== NBD_OPTION_MAGIC) throw new Error('bad greeting');
    const flags = Buffer.alloc(CLIENT_FLAGS_SIZE_BYTES);
    flags.writeUInt32BE(clientFlags, 0);
    this.send(flags);
    return greeting.readUInt16BE(16);
  }

  sendOption(option: number, data?: Buffer): void {
    this.send(encodeOptionHeader(option, data));
  }

  async readOptionReply(): Promise<OptionReply> {
    const header = await this.readExactly(OPTION_REPLY_HEADER_SIZE_BYTES);
    const data = await this.readExactly(header.readUInt32BE(16));
    const decoded = decodeOptionReply(Buffer.concat([header, data]));
    if (decoded === undefined || 'error' in decoded) throw new Error(`bad option reply: ${decoded === undefined ? 'short' : decoded.error}`);
    return decoded.reply;
  }

  /** Replies to an option up to and including the final one (NBD_REP_ACK or an error). */
  async readOptionReplies(): Promise<OptionReply[]> {
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.readOptionReply();
      replies.push(reply);
      if (reply.replyType === NBD_REP_ACK || isOptionReplyError(reply.replyType)) return replies;
    }
  }

  /** Greeting, flags and NBD_OPT_GO: the connection is in transmission when this resolves. */
  async handshake(options: { exportName?: string; infoTypes?: number[] } = {}): Promise<{ infos: Info[] }> {
    await this.greet();
    this.sendOption(NBD_OPT_GO, encodeInfoRequest(options.exportName ?? '', options.infoTypes ?? []));
    const replies = await this.readOptionReplies();
    const last = replies[replies.length - 1]!;
    if (last.replyType !== NBD_REP_ACK) throw new Error(`NBD_OPT_GO refused with 0x${last.replyType.toString(16)}`);
    const infos = replies.filter((reply) => reply.replyType === NBD_REP_INFO).map((reply) => {
      const decoded = decodeInfo(reply.data);
      if (!decoded.ok) throw new Error(decoded.reason);
      return decoded.info;
    });
    return { infos };
  }

  sendRequest(request: { type: number; flags?: number; handle: bigint; offset: bigint | number; lengthBytes: number; payload?: Buffer; magic?: number }): void {
    const header = encodeRequestHeader({
      flags: request.flags ?? 0, type: request.type, handle: request.handle, offset: BigInt(request.offset), lengthBytes: request.lengthBytes,
    });
    if (request.magic !== undefined) header.writeUInt32BE(request.magic, 0);
    this.send(request.payload === undefined ? header : Buffer.concat([header, request.payload]));
  }

  async readReply(payloadBytes = 0): Promise<{ error: number; handle: bigint; data: Buffer }> {
    const decoded = decodeSimpleReplyHeader(await this.readExactly(SIMPLE_REPLY_HEADER_SIZE_BYTES));
    if (!decoded.ok) throw new Error(decoded.reason);
    const data = decoded.header.error === 0 && payloadBytes > 0 ? await this.readExactly(payloadBytes) : Buffer.alloc(0);
    return { ...decoded.header, data };
  }

  async write(offsetBytes: number, data: Buffer, handle = 1n): Promise<number> {
    this.sendRequest({ type: NBD_CMD_WRITE, handle, offset: offsetBytes, lengthBytes: data.length, payload: data });
    const reply = await this.readReply();
    if (reply.handle !== handle) throw new Error(`reply for handle ${reply.handle}, expected ${handle}`);
    return reply.error;
  }

  async read(offsetBytes: number, lengthBytes: number, handle = 2n): Promise<{ error: number; data: Buffer }> {
    this.sendRequest({ type: NBD_CMD_READ, handle, offset: offsetBytes, lengthBytes });
    const reply = await this.readReply(lengthBytes);
    if (reply.handle !== handle) throw new Error(`reply for handle ${reply.handle}, expected ${handle}`);
    return reply;
  }

  disconnect(): void {
    this.sendRequest({ type: NBD_CMD_DISC, handle: 0n, offset: 0, lengthBytes: 0 });
  }
}
