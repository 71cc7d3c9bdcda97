// Proves: the foreign-signature detector names each format from its documented magic and offset
// (ext2/3/4, XFS, btrfs, swap at every page size, LVM2, md 0.90/1.0/1.1/1.2, LUKS, ISO 9660,
// GPT, MBR, FAT, NTFS), finds nothing on zeroes, and is not fooled by half a signature.
import { describe, expect, it } from 'vitest';
import { detectForeignSignatures, SIGNATURE_HEAD_BYTES, SIGNATURE_TAIL_BYTES } from '../../src/format/foreign-signatures.js';
import { KIB, MIB } from '../../src/units.js';

const SIZE_BYTES = 8 * MIB + 12 * KIB; // not a multiple of 64 KiB: the md end offsets must be computed, not assumed

function image(edit: (bytes: Buffer) => void): Buffer {
  const bytes = Buffer.alloc(SIZE_BYTES);
  edit(bytes);
  return bytes;
}

function detect(bytes: Buffer): string[] {
  const tailOffsetBytes = bytes.length - SIGNATURE_TAIL_BYTES;
  return detectForeignSignatures({
    sizeBytes: bytes.length, head: bytes.subarray(0, SIGNATURE_HEAD_BYTES), tail: bytes.subarray(tailOffsetBytes), tailOffsetBytes,
  }).map((signature) => `${signature.what} @${signature.offsetBytes}`);
}

function extImage(compat: number, incompat: number): Buffer {
  return image((bytes) => {
    bytes.writeUInt32LE(1024, 1024); // inodes
    bytes.writeUInt32LE(2, 1024 + 24); // 4 KiB blocks
    bytes.writeUInt16LE(0xef53, 1024 + 56);
    bytes.writeUInt32LE(compat, 1024 + 92);
    bytes.writeUInt32LE(incompat, 1024 + 96);
  });
}

function mdAt(offsetBytes: number, major: number): Buffer {
  return image((bytes) => {
    bytes.writeUInt32LE(0xa92b4efc, offsetBytes);
    bytes.writeUInt32LE(major, offsetBytes + 4);
  });
}

describe('foreign signatures', () => {
  it('names each format at its documented offset', () => {
    const md10 = Math.floor((SIZE_BYTES - 8 * KIB) / (4 * KIB)) * 4 * KIB;
    const md090 = Math.floor(SIZE_BYTES / (64 * KIB)) * 64 * KIB - 64 * KIB;
    const cases: [Buffer, string][] = [
      [extImage(0, 0), 'an ext2 file system @1080'],
      [extImage(0x4, 0), 'an ext3 file system @1080'],
      [extImage(0x4, 0x40 | 0x200), 'an ext4 file system @1080'],
      [image((b) => b.write('XFSB', 0)), 'an XFS file system @0'],
      [image((b) => b.write('_BHRfS_M', 65536 + 64)), 'a btrfs file system @65600'],
      [image((b) => b.write('LABELONE', 512) && b.write('LVM2 001', 512 + 24)), 'an LVM2 physical volume @512'],
      [mdAt(0, 1), 'a Linux md RAID member (metadata 1.1) @0'],
      [mdAt(4096, 1), 'a Linux md RAID member (metadata 1.2) @4096'],
      [mdAt(md10, 1), `a Linux md RAID member (metadata 1.0) @${md10}`],
      [mdAt(md090, 0), `a Linux md RAID member (metadata 0.90) @${md090}`],
      [image((b) => Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]).copy(b, 0)), 'a LUKS encrypted volume @0'],
      [image((b) => b.write('CD001', 32769)), 'an ISO 9660 file system @32769'],
      [image((b) => b.write('EFI PART', 512)), 'a GPT partition table @512'],
      [image((b) => b.write('EFI PART', 4096)), 'a GPT partition table @4096'],
      [image((b) => { b[446 + 4] = 0x83; b[510] = 0x55; b[511] = 0xaa; }), 'an MBR (DOS) partition table @510'],
      [image((b) => { b.write('FAT32   ', 82); b[510] = 0x55; b[511] = 0xaa; }), 'a FAT32 file system @82'],
      [image((b) => { b.write('NTFS    ', 3); b[510] = 0x55; b[511] = 0xaa; }), 'an NTFS file system @3'],
    ];
    for (const pageBytes of [4, 8, 16, 32, 64]) {
      cases.push([image((b) => b.write('SWAPSPACE2', pageBytes * KIB - 10)), `a swap area @${pageBytes * KIB - 10}`]);
    }
    for (const [bytes, expected] of cases) expect(detect(bytes)).toEqual([expected]);
  });

  it('finds nothing on zeroes, and nothing in half a signature', () => {
    expect(detect(image(() => {}))).toEqual([]);
    const halves: Buffer[] = [
      image((b) => b.writeUInt16LE(0xef53, 1024 + 56)), // ext magic, but no inodes
      image((b) => b.write('LABELONE', 0)), // LVM label without its type
      mdAt(4096, 7), // md magic with an impossible major version
      mdAt(Math.floor(SIZE_BYTES / (64 * KIB)) * 64 * KIB - 64 * KIB, 1), // 0.90's place, 1.x's version
      image((b) => { b[510] = 0x55; b[511] = 0xaa; }), // a boot signature with no partition in use
      image((b) => b.write('SWAPSPACE2', 4096)), // not at the end of a page
    ];
    for (const bytes of halves) expect(detect(bytes)).toEqual([]);
  });
});
