import { randomBytes } from 'node:crypto';

export const UUID_SIZE_BYTES = 16;

export function newUuid(): Buffer {
  const bytes = randomBytes(UUID_SIZE_BYTES);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return bytes;
}

export function formatUuid(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function parseUuid(text: string): Buffer | undefined {
  const hex = text.replace(/[-:]/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}
