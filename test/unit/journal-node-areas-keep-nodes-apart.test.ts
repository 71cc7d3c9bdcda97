// Proves: format 1.2's cluster nodes byte cuts the journal region into one area per node, each
// with its own slots, and an array without it keeps the 1.0 layout; a node writes records only
// to its own area, so a crashed node's dirty stripes stay listed there (not in another node's
// area) until that node's area is recovered.
import { expect, it } from 'vitest';
import { writeNewArray } from '../../src/engine/create.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { MemoryDevice } from '../../src/device/memory-device.js';
import { findRegion } from '../../src/format/layout.js';
import { decodeSuperblock, encodeSuperblock } from '../../src/format/superblock.js';
import { journalLayoutFor, readJournal, slotOffsetBytes } from '../../src/journal/store.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { MIB } from '../../src/units.js';

async function clusterMembers(level: 5 | 6, clusterNodes: number | undefined): Promise<MemoryDevice[]> {
  const devices = Array.from({ length: 5 }, (_, index) => new MemoryDevice(4 * MIB + 16 * 65536, `mem${index}`));
  await writeNewArray(devices, { level, layout: 'left-symmetric', chunkSizeBytes: 65536, policy: 'dirty-log', raidDevices: 5, name: 'cl', zeroMetadata: false, parityInSync: true, clusterNodes });
  return devices;
}

it('node areas are disjoint, inside the journal region, and an array without the byte keeps one area', async () => {
  for (const level of [5, 6] as const) {
    const sb = (await readSuperblocks((await clusterMembers(level, 3))[0]!)).superblock!;
    expect(sb.clusterNodes).toBe(3);
    expect(decodeSuperblock(encodeSuperblock(sb))).toEqual({ ok: true, value: sb });
    expect(encodeSuperblock(sb)[107]).toBe(3);
    const region = findRegion(sb.regions, 'journal')!;
    const spans: [number, number][] = [];
    for (let node = 0; node < 3; node++) {
      const layout = journalLayoutFor(sb, node);
      expect(layout.slotBytes).toBeGreaterThanOrEqual(64 * 1024);
      for (let slot = 0; slot < layout.slotsPerMember; slot++) spans.push([slotOffsetBytes(layout, slot), slotOffsetBytes(layout, slot) + layout.slotBytes]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    expect(spans.at(-1)![1]).toBeLessThanOrEqual(region.sizeBytes);
    expect(() => journalLayoutFor(sb, 3)).toThrow(/node 3 of 3/);

    const plain = (await readSuperblocks((await clusterMembers(level, undefined))[0]!)).superblock!;
    expect(plain.clusterNodes).toBeUndefined();
    expect(encodeSuperblock(plain)[107]).toBe(0);
    const single = journalLayoutFor(plain);
    expect(single.areaOffsetBytes).toBe(0);
    expect(single.slotBytes).toBe(Math.floor(region.sizeBytes / single.slotsPerMember / 4096) * 4096);
  }
});

it('a node writes only its own area: its crash leaves its stripes listed there, and its restart recovers them', async () => {
  const devices = await clusterMembers(5, 3);
  // Memory devices carry no byte-range locks: the arrays run without parity locks here.
  const noLocks = async (array: { parityLocks: unknown }) => { array.parityLocks = undefined; };
  const node1 = await assembleDevices(devices, { cluster: { node: 1, beforeRecovery: noLocks } });
  await node1.array.write(0, Buffer.alloc(3 * 65536, 0x11));
  await node1.array.write(10 * 4 * 65536, Buffer.alloc(4096, 0x22));
  await node1.array.abandon(); // the node dies: no clean record

  const sb = (await readSuperblocks(devices[0]!)).superblock!;
  const area = async (node: number) => (await readJournal(devices.map((device) => ({ path: device.path, flush: async () => {}, writeRegion: async () => {}, readRegion: (_kind: 'journal', at: number, buf: Uint8Array) => device.read(buf, findRegion(sb.regions, 'journal')!.offsetBytes + at) })), sb.arrayUuid, journalLayoutFor(sb, node))).record;
  expect((await area(0))).toBeUndefined();
  expect((await area(2))).toBeUndefined();
  const dirty = (await area(1))!;
  expect(dirty.clean).toBe(false);
  expect(dirty.entries.map((entry) => entry.stripe).sort((a, b) => a - b)).toEqual([0, 10]);

  // Node 0 starts: its own area is clean, it recovers nothing and leaves node 1's area alone.
  const node0 = await assembleDevices(devices, { cluster: { node: 0, beforeRecovery: noLocks } });
  expect(node0.report.recovery).toBeUndefined();
  await node0.array.close();
  expect((await area(1))!.clean).toBe(false);

  // Node 1 restarts: it recovers the stripes its area lists and leaves the area clean.
  const again = await assembleDevices(devices, { cluster: { node: 1, beforeRecovery: noLocks } });
  expect(again.report.recovery && 'stripes' in again.report.recovery ? again.report.recovery.stripes : []).toEqual([0, 10]);
  await again.array.close();
  expect((await area(1))!.clean).toBe(true);
});
