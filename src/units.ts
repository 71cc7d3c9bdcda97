// Units shared by every layer. Sizes are plain numbers of bytes: a member up to 2^53 bytes
// (8 PiB) is exact in a double, far past what user space will ever be asked to serve.

export const SECTOR_SIZE_BYTES = 512;
export const BLOCK_SIZE_BYTES = 4096;
export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GIB = 1024 * MIB;
export const TIB = 1024 * GIB;

const SUFFIX_BYTES: Record<string, number> = {
  '': 1, B: 1, S: SECTOR_SIZE_BYTES,
  K: KIB, KB: KIB, KIB: KIB,
  M: MIB, MB: MIB, MIB: MIB,
  G: GIB, GB: GIB, GIB: GIB,
  T: TIB, TB: TIB, TIB: TIB,
};

/** Parses "4096", "64K", "1.5G", "8M". Suffixes are binary (K = 1024), as in mdadm. */
export function parseSizeBytes(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const multiplier = SUFFIX_BYTES[match[2]!.toUpperCase()];
  if (multiplier === undefined) return undefined;
  const value = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(value)) return undefined;
  return value;
}

/** "1.50 GiB", "4.00 KiB", "512 B": for humans only, never parsed back. */
export function formatSizeBytes(sizeBytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = sizeBytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && Number.isInteger(Math.log2(value));
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** A broken invariant in our own code: never an expected outcome, never caught to continue. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

/** A place our own code never reaches (after a loop that always returns): an assertion failure there. */
export function assertNever(message: string): never {
  throw new Error(`assertion failed: ${message}`);
}
