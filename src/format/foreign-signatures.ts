// What else a member may already hold: file systems, swap, volume-manager and RAID metadata,
// partition tables. create (and add) refuse a member that carries one, naming it, unless
// --force: overwriting a file system by mistake is the one error a RAID tool must not make
// quietly. Pure: the caller reads the head and tail of the device and passes the bytes in.
//
// Every magic number and offset below is the one its format documents:
//   ext2/3/4   superblock at 1024; s_magic 0xEF53 (u16 LE) at +56; features at +92 (compat,
//              has_journal 0x4), +96 (incompat: extents 0x40, 64bit 0x80, flex_bg 0x200)
//   XFS        "XFSB" at 0
//   btrfs      "_BHRfS_M" at 65536 + 64
//   swap       "SWAPSPACE2" (or the old "SWAP-SPACE") in the last 10 bytes of the first page
//   LVM2 PV    "LABELONE" at the start of one of the first four 512-byte sectors, "LVM2 001" at +24
//   Linux md   magic 0xa92b4efc (u32 LE), major version (u32 LE) after it: 0.90 at the last
//              64 KiB boundary minus 64 KiB; 1.0 at the end minus 8 KiB rounded down to 4 KiB;
//              1.1 at 0; 1.2 at 4096
//   LUKS       "LUKS" 0xba 0xbe at 0
//   ISO 9660   "CD001" at 32769
//   GPT        "EFI PART" at 512 (512-byte sectors) or 4096 (4 KiB sectors)
//   MBR        0x55 0xaa at 510 with a partition entry in use (type byte at 446 + 16i + 4)
//   FAT, NTFS  "FAT12   "/"FAT16   " at 54, "FAT32   " at 82, "NTFS    " at 3 (with 0x55aa)

import { KIB } from '../units.js';

/** Bytes to read from the start of a device: everything above lies within them. */
export const SIGNATURE_HEAD_BYTES = 128 * KIB;
/** Bytes to read from the end (md 0.90 and 1.0 superblocks). */
export const SIGNATURE_TAIL_BYTES = 192 * KIB;

export interface ForeignSignature {
  /** What it is, for a message: "an ext4 file system". */
  what: string;
  /** Device offset of the magic that gave it away. */
  offsetBytes: number;
}

export interface DeviceEnds {
  sizeBytes: number;
  /** The first min(size, SIGNATURE_HEAD_BYTES) bytes. */
  head: Uint8Array;
  /** The last bytes of the device, starting at tailOffsetBytes. */
  tail: Uint8Array;
  tailOffsetBytes: number;
}

const MD_MAGIC = 0xa92b4efc;
const SWAP_PAGE_SIZES_BYTES = [4, 8, 16, 32, 64].map((size) => size * KIB);

function ascii(bytes: Uint8Array, offsetBytes: number, text: string): boolean {
  if (offsetBytes < 0 || offsetBytes + text.length > bytes.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[offsetBytes + i] !== text.charCodeAt(i)) return false;
  return true;
}

function u16(bytes: Uint8Array, offsetBytes: number): number | undefined {
  if (offsetBytes < 0 || offsetBytes + 2 > bytes.length) return undefined;
  return bytes[offsetBytes]! | (bytes[offsetBytes + 1]! << 8);
}

function u32(bytes: Uint8Array, offsetBytes: number): number | undefined {
  if (offsetBytes < 0 || offsetBytes + 4 > bytes.length) return undefined;
  return (bytes[offsetBytes]! | (bytes[offsetBytes + 1]! << 8) | (bytes[offsetBytes + 2]! << 16) | (bytes[offsetBytes + 3]! << 24)) >>> 0;
}

/** A u32 at a device offset, from whichever end holds it. */
function deviceU32(ends: DeviceEnds, offsetBytes: number): number | undefined {
  if (offsetBytes + 4 <= ends.head.length) return u32(ends.head, offsetBytes);
  return u32(ends.tail, offsetBytes - ends.tailOffsetBytes);
}

function ext(head: Uint8Array): ForeignSignature | undefined {
  const sb = 1024;
  if (u16(head, sb + 56) !== 0xef53) return undefined;
  const logBlockSize = u32(head, sb + 24)!;
  if (logBlockSize > 6 || u32(head, sb)! === 0) return undefined; // block size 1 KiB .. 64 KiB, some inodes
  const compat = u32(head, sb + 92)!;
  const incompat = u32(head, sb + 96)!;
  const kind = incompat & (0x40 | 0x80 | 0x200) ? 'ext4' : compat & 0x4 ? 'ext3' : 'ext2';
  return { what: `an ${kind} file system`, offsetBytes: sb + 56 };
}

function md(ends: DeviceEnds): ForeignSignature | undefined {
  const size = ends.sizeBytes;
  const places: [string, number][] = [['1.1', 0], ['1.2', 4 * KIB]];
  if (size >= 16 * KIB) places.push(['1.0', Math.floor((size - 8 * KIB) / (4 * KIB)) * 4 * KIB]);
  if (size >= 128 * KIB) places.push(['0.90', Math.floor(size / (64 * KIB)) * 64 * KIB - 64 * KIB]);
  for (const [version, offsetBytes] of places) {
    if (deviceU32(ends, offsetBytes) !== MD_MAGIC) continue;
    const major = deviceU32(ends, offsetBytes + 4);
    if ((version === '0.90' && major === 0) || (version !== '0.90' && major === 1)) {
      return { what: `a Linux md RAID member (metadata ${version})`, offsetBytes };
    }
  }
  return undefined;
}

function partitions(head: Uint8Array): ForeignSignature | undefined {
  for (const offsetBytes of [512, 4 * KIB]) {
    if (ascii(head, offsetBytes, 'EFI PART')) return { what: 'a GPT partition table', offsetBytes };
  }
  if (head[510] !== 0x55 || head[511] !== 0xaa) return undefined;
  if (ascii(head, 3, 'NTFS    ')) return { what: 'an NTFS file system', offsetBytes: 3 };
  if (ascii(head, 54, 'FAT12   ') || ascii(head, 54, 'FAT16   ')) return { what: 'a FAT file system', offsetBytes: 54 };
  if (ascii(head, 82, 'FAT32   ')) return { what: 'a FAT32 file system', offsetBytes: 82 };
  for (let entry = 0; entry < 4; entry++) {
    const at = 446 + 16 * entry;
    const status = head[at]!;
    if (head[at + 4] !== 0 && (status === 0x00 || status === 0x80)) return { what: 'an MBR (DOS) partition table', offsetBytes: 510 };
  }
  return undefined;
}

/** Every foreign signature found, most specific first; empty when the device looks unused. */
export function detectForeignSignatures(ends: DeviceEnds): ForeignSignature[] {
  const { head } = ends;
  const found: ForeignSignature[] = [];
  const add = (signature: ForeignSignature | undefined) => { if (signature) found.push(signature); };
  add(ext(head));
  if (ascii(head, 0, 'XFSB')) add({ what: 'an XFS file system', offsetBytes: 0 });
  if (ascii(head, 64 * KIB + 64, '_BHRfS_M')) add({ what: 'a btrfs file system', offsetBytes: 64 * KIB + 64 });
  for (const pageBytes of SWAP_PAGE_SIZES_BYTES) {
    const at = pageBytes - 10;
    if (ascii(head, at, 'SWAPSPACE2') || ascii(head, at, 'SWAP-SPACE')) add({ what: 'a swap area', offsetBytes: at });
  }
  for (let sector = 0; sector < 4; sector++) {
    const at = sector * 512;
    if (ascii(head, at, 'LABELONE') && ascii(head, at + 24, 'LVM2 001')) add({ what: 'an LVM2 physical volume', offsetBytes: at });
  }
  add(md(ends));
  if (ascii(head, 0, 'LUKS\u00ba\u00be')) add({ what: 'a LUKS encrypted volume', offsetBytes: 0 });
  if (ascii(head, 32 * KIB + 1, 'CD001')) add({ what: 'an ISO 9660 file system', offsetBytes: 32 * KIB + 1 });
  add(partitions(head));
  return found;
}
