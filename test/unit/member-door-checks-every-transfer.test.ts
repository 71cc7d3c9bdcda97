// Proves: the member door (memberIo) refuses a transfer that is unaligned, empty, outside its
// zone, a write into a zone only ever read, or a zone past the device's end; MemberDisk never
// writes a superblock region piecemeal; and a whole session (create with zeroing, writes,
// a member failed, a spare enrolled and rebuilt, scrub) writes nothing outside the regions.
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { RecordingDevice, type RecordedOp } from '../../src/device/recording-device.js';
import { METADATA_ZONE, MemberDisk, SUPERBLOCKS_ZONE, memberIo, probeZone } from '../../src/engine/member-disk.js';
import { writeNewArray } from '../../src/engine/create.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { enrolMember, prepareRebuild, runRebuild } from '../../src/engine/maintenance.js';
import { scrubArray } from '../../src/engine/scrub.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { buildMemberLayout } from '../../src/format/layout.js';
import { MIB } from '../../src/units.js';

const MEMBER_BYTES = 4 * MIB + 16 * 64 * 1024;

describe('memberIo', () => {
  const device = new MemoryDevice(MEMBER_BYTES, 'm0');
  const data = { name: 'data', offsetBytes: 4 * MIB, sizeBytes: 64 * 1024 };
  const refused: [string, () => Promise<void>, RegExp][] = [
    ['an unaligned offset', () => memberIo(device, 'write', data, 512, Buffer.alloc(4096)), /aligned to 4096/],
    ['an unaligned length', () => memberIo(device, 'read', data, 0, Buffer.alloc(100)), /aligned to 4096/],
    ['an empty transfer', () => memberIo(device, 'read', data, 0, Buffer.alloc(0)), /inside data/],
    ['a transfer past its zone', () => memberIo(device, 'write', data, 64 * 1024 - 4096, Buffer.alloc(8192)), /inside data/],
    ['a negative offset', () => memberIo(device, 'read', data, -4096, Buffer.alloc(4096)), /inside data/],
    ['a write into a zone only read', () => memberIo(device, 'write', SUPERBLOCKS_ZONE, 0, Buffer.alloc(4096)), /only ever read/],
    ['a write to a probe', () => memberIo(device, 'write', probeZone(device), 0, Buffer.alloc(1)), /only ever read/],
    ['a zone past the device', () => memberIo(device, 'read', { name: 'data', offsetBytes: 4 * MIB, sizeBytes: MEMBER_BYTES }, 0, Buffer.alloc(4096)), /lies inside m0/],
  ];
  for (const [what, call, message] of refused) {
    it(`refuses ${what}`, async () => {
      await expect(call()).rejects.toThrow(/assertion failed/);
      await expect(call()).rejects.toThrow(message);
    });
  }

  it('lets aligned transfers inside a zone through, and probes read any byte', async () => {
    await memberIo(device, 'write', data, 4096, Buffer.alloc(4096, 9));
    const back = Buffer.alloc(4096);
    await memberIo(device, 'read', data, 4096, back);
    expect(back.equals(Buffer.alloc(4096, 9))).toBe(true);
    const one = Buffer.alloc(3);
    await memberIo(device, 'read', probeZone(device), 4 * MIB + 4095, one);
    expect([...one]).toEqual([0, 9, 9]);
  });

  it('writes superblocks only whole, through writeSuperblock', async () => {
    const devices = [0, 1, 2].map((i) => new MemoryDevice(MEMBER_BYTES, `s${i}`));
    await writeNewArray(devices, { level: 5, layout: 'left-symmetric', chunkSizeBytes: 64 * 1024, policy: 'dirty-log', raidDevices: 3, name: 't', zeroMetadata: false, parityInSync: true });
    const sb = (await readSuperblocks(devices[0]!)).superblock!;
    const disk = new MemberDisk(devices[0]!, sb);
    await expect(disk.writeRegion('superblock-primary', 0, Buffer.alloc(4096))).rejects.toThrow(/written whole, by writeSuperblock/);
  });
});

describe('a whole session through the door', () => {
  it('writes only inside the member regions (and the metadata zone when members are made)', async () => {
    const log: RecordedOp[] = [];
    const devices = [0, 1, 2, 3, 4].map((i) => new RecordingDevice(new MemoryDevice(MEMBER_BYTES, `r${i}`), i, log));
    await writeNewArray(devices.slice(0, 4), { level: 6, layout: 'left-symmetric', chunkSizeBytes: 64 * 1024, policy: 'dirty-log', raidDevices: 4, name: 't', zeroMetadata: true, parityInSync: true });
    const { array } = await assembleDevices(devices.slice(0, 4), {});
    await array.write(12345, Buffer.alloc(200_000, 1));
    await array.failMember(1, 'failed by the test');
    await array.write(0, Buffer.alloc(70_000, 2));
    const index = await enrolMember(array, devices[4]!);
    const targets = await prepareRebuild(array, undefined);
    expect(targets).toEqual([index]);
    await runRebuild(array, index);
    await scrubArray(array, { repair: true });
    await array.close();
    const regions = buildMemberLayout(MEMBER_BYTES);
    const zones = [...regions, METADATA_ZONE];
    const outside = log.filter((op): op is Extract<RecordedOp, { kind: 'write' }> => op.kind === 'write')
      .filter((op) => !zones.some((zone) => op.offsetBytes >= zone.offsetBytes && op.offsetBytes + op.data.length <= zone.offsetBytes + zone.sizeBytes));
    expect(log.filter((op) => op.kind === 'write').length).toBeGreaterThan(50);
    expect(outside.map((op) => `device ${op.device} at ${op.offsetBytes}+${op.data.length}`)).toEqual([]);
  });
});
