import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/** CRC32C (Castagnoli), as used by ext4, btrfs and iSCSI. */
export function crc32c(bytes: Uint8Array, initial = 0): number {
  return nativeCrc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), initial) >>> 0;
}
