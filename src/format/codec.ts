// What every on-disk codec shares: the decode result, byte maps declared once as tables, integer
// access by field (the width comes from the table, never from the call), and the magic and
// CRC32C checks. Pure; no I/O. Corrupt input is a value with a reason; misuse is an assertion.

import { assert } from '../units.js';
import { crc32c } from './crc32c.js';

export type Corrupt = { ok: false; reason: string };
export type DecodeResult<T> = { ok: true; value: T } | Corrupt;

export function corrupt(reason: string): Corrupt {
  return { ok: false, reason };
}

/** Integers jraid keeps in a JavaScript number are below this; a u64 at or past it is corrupt. */
export const SAFE_LIMIT = 2 ** 53;
const SAFE_LIMIT_BIG = BigInt(SAFE_LIMIT);

/**
 * What a field holds: a little-endian unsigned integer, raw bytes (magic, uuid, name), a table
 * of fixed-size entries with a map of their own, or reserved space (written zero, never read).
 */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'bytes' | 'table' | 'reserved';
export const FIELD_TYPES: readonly FieldType[] = ['u8', 'u16', 'u32', 'u64', 'bytes', 'table', 'reserved'];
const UINT_SIZE_BYTES: Partial<Record<FieldType, number>> = { u8: 1, u16: 2, u32: 4, u64: 8 };

export interface Field {
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  readonly type: FieldType;
}

export interface ByteMap<K extends string> {
  readonly what: string;
  readonly sizeBytes: number;
  readonly field: { readonly [P in K]: Field };
}

/**
 * Declares a structure's bytes once, as `name: [offsetBytes, sizeBytes, type]`, reserved space
 * included. Checked here, at load: the fields tile the structure exactly (none overlaps
 * another, none leaves a gap, the last ends at `sizeBytes`) and an integer is as wide as its type.
 */
export function declareFields<K extends string>(
  what: string,
  sizeBytes: number,
  spec: { readonly [P in K]: readonly [offsetBytes: number, sizeBytes: number, type: FieldType] },
): ByteMap<K> {
  const entries = Object.entries(spec) as [K, readonly [number, number, FieldType]][];
  const sorted = [...entries].sort((a, b) => a[1][0] - b[1][0]);
  let endBytes = 0;
  for (const [name, [offsetBytes, fieldBytes, type]] of sorted) {
    assert(Number.isSafeInteger(fieldBytes) && fieldBytes > 0, `${what}: field ${name} is empty`);
    assert(FIELD_TYPES.includes(type), `${what}: field ${name} has unknown type ${type}`);
    const uintBytes = UINT_SIZE_BYTES[type];
    assert(uintBytes === undefined || uintBytes === fieldBytes, `${what}: field ${name} is ${fieldBytes} bytes, a ${type} is ${uintBytes}`);
    assert(offsetBytes >= endBytes, `${what}: field ${name} at ${offsetBytes} overlaps the field before it (ends ${endBytes})`);
    assert(offsetBytes === endBytes, `${what}: gap of ${offsetBytes - endBytes} bytes before field ${name}`);
    endBytes = offsetBytes + fieldBytes;
  }
  assert(endBytes === sizeBytes, `${what}: fields end at ${endBytes}, the structure is ${sizeBytes} bytes`);
  const field = {} as { [P in K]: Field };
  for (const [name, [offsetBytes, fieldBytes, type]] of entries) field[name] = { offsetBytes, sizeBytes: fieldBytes, type };
  return { what, sizeBytes, field };
}

/** Where entry `index` of a table of `entry`-shaped records held in `table` starts. */
export function entryOffsetBytes(table: Field, entry: ByteMap<string>, index: number): number {
  if (table.type !== 'table') assert(false, `${entry.what}: the field holding the entries is a table`);
  if (table.sizeBytes % entry.sizeBytes !== 0) assert(false, `${entry.what}: table of ${table.sizeBytes} bytes is not whole entries`);
  if (!(Number.isInteger(index) && index >= 0 && index < table.sizeBytes / entry.sizeBytes)) assert(false, `${entry.what} ${index} is outside its table`);
  return table.offsetBytes + index * entry.sizeBytes;
}

// The checks on the access paths below run for every field of every record the journal
// writes, so they are cheap: the switch on the type is the integer check (declareFields made
// every integer field exactly as wide as its type), and a message is built only on failure.

/**
 * Reads an unsigned little-endian integer of the field's width. A u64 of 2^53 or more reads as
 * NaN, which fails `Number.isSafeInteger` and every comparison, so a range check rejects it.
 */
export function readUint(bytes: Buffer, field: Field, baseBytes = 0): number {
  const at = baseBytes + field.offsetBytes;
  switch (field.type) {
    case 'u8': return bytes.readUInt8(at);
    case 'u16': return bytes.readUInt16LE(at);
    case 'u32': return bytes.readUInt32LE(at);
    case 'u64': {
      const value = bytes.readBigUInt64LE(at);
      return value >= SAFE_LIMIT_BIG ? Number.NaN : Number(value);
    }
    default: return notAnInteger(field);
  }
}

/** Writes an unsigned little-endian integer of the field's width; the value must fit it. */
export function writeUint(bytes: Buffer, field: Field, value: number, baseBytes = 0): void {
  const at = baseBytes + field.offsetBytes;
  if (!(Number.isSafeInteger(value) && value >= 0)) assert(false, `field value ${value} is not a safe unsigned integer`);
  switch (field.type) {
    case 'u8':
      if (value > 0xff) doesNotFit(field, value);
      bytes.writeUInt8(value, at);
      return;
    case 'u16':
      if (value > 0xffff) doesNotFit(field, value);
      bytes.writeUInt16LE(value, at);
      return;
    case 'u32':
      if (value > 0xffff_ffff) doesNotFit(field, value);
      bytes.writeUInt32LE(value, at);
      return;
    case 'u64':
      bytes.writeBigUInt64LE(BigInt(value), at); // a safe integer always fits
      return;
    default:
      notAnInteger(field);
  }
}

function doesNotFit(field: Field, value: number): never {
  assert(false, `field value ${value} does not fit ${field.sizeBytes} bytes`);
}

function notAnInteger(field: Field): never {
  assert(false, `a ${field.type} field of ${field.sizeBytes} bytes is not an integer`);
}

/** A copy of the field's bytes (never a view into the input, which the caller may reuse). */
export function readBytes(bytes: Buffer, field: Field, baseBytes = 0): Buffer {
  if (field.type !== 'bytes') assert(false, `a ${field.type} field is not read as bytes`);
  const at = baseBytes + field.offsetBytes;
  return Buffer.from(bytes.subarray(at, at + field.sizeBytes));
}

/** Copies `value` to the start of the field; a shorter value leaves the rest zero. */
export function writeBytes(bytes: Buffer, field: Field, value: Uint8Array, baseBytes = 0): void {
  if (field.type !== 'bytes') assert(false, `a ${field.type} field is not written as bytes`);
  if (value.length > field.sizeBytes) assert(false, `${value.length} bytes do not fit a field of ${field.sizeBytes}`);
  bytes.set(value, baseBytes + field.offsetBytes);
}

/** A Buffer view of the input, so decoders take any Uint8Array without copying it. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function hasMagic(bytes: Buffer, field: Field, magic: Buffer): boolean {
  assert(field.type === 'bytes' && magic.length === field.sizeBytes, 'magic fills its field');
  const end = field.offsetBytes + field.sizeBytes;
  return bytes.length >= end && bytes.subarray(field.offsetBytes, end).equals(magic);
}

/** CRC32C of the bytes before the checksum field: for a structure whose checksum ends it. */
export function crcBefore(bytes: Buffer, crcField: Field): number {
  assert(crcField.type === 'u32', 'a checksum is a u32');
  return crc32c(bytes.subarray(0, crcField.offsetBytes));
}

const ZERO_CRC = Buffer.alloc(4);

/** CRC32C of bytes 0 .. endBytes - 1 with the checksum field counted as zero: for a structure followed by its payload. */
export function crcWithFieldZeroed(bytes: Buffer, crcField: Field, endBytes: number): number {
  assert(crcField.type === 'u32' && crcField.offsetBytes + 4 <= endBytes && endBytes <= bytes.length, 'checksum field inside the covered bytes');
  // An encoder's field is still zero: one pass over the bytes, as the format defines it.
  if (bytes.readUInt32LE(crcField.offsetBytes) === 0) return crc32c(bytes.subarray(0, endBytes));
  const before = crc32c(bytes.subarray(0, crcField.offsetBytes));
  return crc32c(bytes.subarray(crcField.offsetBytes + 4, endBytes), crc32c(ZERO_CRC, before));
}

/** The reason when the stored checksum is not the computed one; undefined when they agree. */
export function checksumProblem(bytes: Buffer, crcField: Field, computed: number): string | undefined {
  const stored = readUint(bytes, crcField);
  return stored === computed ? undefined : `bad checksum: stored ${hex32(stored)}, computed ${hex32(computed)}`;
}

export function truncatedProblem(lengthBytes: number, what: string, neededBytes: number): string {
  return `truncated: ${lengthBytes} bytes, ${what} is ${neededBytes}`;
}

/** Looks a numeric id up in one of the format's id tables (types.ts). A loop, not `find`: it runs per block check. */
export function nameOfId<T extends string>(table: readonly { id: number; name: T }[], id: number): T | undefined {
  for (const item of table) if (item.id === id) return item.name;
  return undefined;
}

export function idOfName<T extends string>(table: readonly { id: number; name: T }[], name: T): number {
  for (const item of table) if (item.name === name) return item.id;
  assert(false, `unknown name ${name}`);
}

export function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
