// Control socket framing: each message is a 4-byte length and a JSON header, then an 8-byte
// length and a binary payload (possibly empty). Requests carry {id, op, args}; the daemon
// answers with {id, progress} frames (long work), {id, members} frames (the member paths, when
// a replacement joins during a rebuild) and one final {id, ok, result | error}.

import type { Socket } from 'node:net';
import { assert } from '../units.js';

export const CONTROL_HEADER_BYTES_MAX = 1024 * 1024;
export const CONTROL_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;

export interface ControlFrame {
  header: Record<string, unknown>;
  payload: Buffer;
}

export function encodeFrame(header: Record<string, unknown>, payload: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  assert(json.length <= CONTROL_HEADER_BYTES_MAX && payload.length <= CONTROL_PAYLOAD_BYTES_MAX, 'control frame within bounds');
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(json.length);
  const payloadLength = Buffer.alloc(8);
  payloadLength.writeBigUInt64BE(BigInt(payload.length));
  return Buffer.concat([prefix, json, payloadLength, payload]);
}

/** Splits a byte stream into frames; a malformed frame ends the stream with an error. */
export class FrameReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  push(chunk: Buffer): ControlFrame[] {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const frames: ControlFrame[] = [];
    for (;;) {
      if (this.bufferedBytes < 4) break;
      const all = this.flatten();
      const headerBytes = all.readUInt32BE(0);
      if (headerBytes > CONTROL_HEADER_BYTES_MAX) throw new Error(`control frame header of ${headerBytes} bytes is too large`);
      if (all.length < 4 + headerBytes + 8) break;
      const payloadBytes = Number(all.readBigUInt64BE(4 + headerBytes));
      if (payloadBytes > CONTROL_PAYLOAD_BYTES_MAX) throw new Error(`control frame payload of ${payloadBytes} bytes is too large`);
      const total = 4 + headerBytes + 8 + payloadBytes;
      if (all.length < total) break;
      const header = JSON.parse(all.subarray(4, 4 + headerBytes).toString('utf8')) as unknown;
      if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error('control frame header is not an object');
      frames.push({ header: header as Record<string, unknown>, payload: Buffer.from(all.subarray(4 + headerBytes + 8, total)) });
      this.buffered = [all.subarray(total)];
      this.bufferedBytes = all.length - total;
    }
    return frames;
  }

  private flatten(): Buffer {
    if (this.buffered.length > 1) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0]!;
  }
}

export function writeFrame(socket: Socket, header: Record<string, unknown>, payload?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(encodeFrame(header, payload), (error) => (error ? reject(error) : resolve()));
  });
}
