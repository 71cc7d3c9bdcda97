// Proves: a daemon's write fence reads a member's superblock on its commit path, and once it
// finds more events than its array knows (another daemon took over) it fails every member
// write with EIO and writes no byte more; its own commits never fence it.
import { expect, it } from 'vitest';
import { Fence } from '../../src/daemon/fence.js';
import { assembleDevices } from '../../src/engine/assemble.js';
import { readSuperblocks } from '../../src/engine/superblock-io.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

it('a newer superblock on a member fences the primary before it writes anything', async () => {
  const members = await makeMemoryMembers({ level: 5, raidDevices: 4 });
  const reasons: string[] = [];
  const fence = new Fence((reason) => reasons.push(reason));
  const { array: primary } = await assembleDevices(members.map(fence.wrap), {});
  const dataRegion = primary.sb.regions.find((region) => region.kind === 'data')!;
  fence.watchEvents(() => primary.sb.events, dataRegion.offsetBytes);

  // The primary's own commits (the events rule, journal records) pass its fence.
  await primary.write(0, Buffer.alloc(3 * 65536, 0x11));
  await primary.flush();
  expect(reasons).toEqual([]);
  expect(fence.fenced).toBe(false);

  // A standby takes the members over (no fence of its own here) and commits twice.
  const { array: standby } = await assembleDevices(members, {});
  await standby.commitSuperblocks(() => {});
  await standby.commitSuperblocks(() => {});
  expect(standby.sb.events).toBeGreaterThan(primary.sb.events);
  await standby.write(65536, Buffer.alloc(65536, 0x22));
  await standby.flush();
  const before = members.map((member) => Buffer.from(member.bytes));

  // The primary's next write reaches its commit path (a journal record): fenced, EIO, nothing written.
  await expect(primary.write(65536, Buffer.alloc(65536, 0x33))).rejects.toThrow();
  expect(fence.fenced).toBe(true);
  expect(reasons).toHaveLength(1);
  expect(reasons[0]).toMatch(/has events \d+, this daemon knows \d+: another daemon took the array over/);
  await expect(primary.write(2 * 65536, Buffer.alloc(4096, 0x44))).rejects.toThrow();
  members.forEach((member, index) => expect(member.bytes.equals(before[index]!), `member ${index} changed after the fence`).toBe(true));
  expect((await readSuperblocks(members[0]!)).superblock!.events).toBe(standby.sb.events);
  expect((await standby.read(65536, 65536)).equals(Buffer.alloc(65536, 0x22))).toBe(true);
});
