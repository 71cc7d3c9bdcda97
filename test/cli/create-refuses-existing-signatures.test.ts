// Proves: create refuses a member that already holds something (an ext4, XFS or btrfs file
// system, swap, an LVM2 physical volume, a Linux md member, an MBR or GPT partition table),
// naming it and writing nothing, unless --force; and refuses a mounted block device (O_EXCL)
// even with --force, naming the mount point.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { EXIT, errorLine, hashAll, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { detachLoop, loopSuiteEnabled } from '../helpers/loop.js';
import { requireTool } from '../helpers/tools.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  ws?.cleanup();
});

function writeBytes(path: string, offsetBytes: number, bytes: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offsetBytes);
  closeSync(fd);
}

interface Case {
  name: string;
  tool?: string;
  sizeBytes: number;
  make: (path: string) => Promise<void>;
  expected: RegExp;
}

const CASES: Case[] = [
  { name: 'ext4', tool: 'mkfs.ext4', sizeBytes: 32 * MIB, make: async (path) => { await execa('mkfs.ext4', ['-q', '-F', path]); }, expected: /holds an ext4 file system/ },
  { name: 'swap', tool: 'mkswap', sizeBytes: 16 * MIB, make: async (path) => { await execa('mkswap', [path]); }, expected: /holds a swap area/ },
  { name: 'XFS', tool: 'mkfs.xfs', sizeBytes: 320 * MIB, make: async (path) => { await execa('mkfs.xfs', ['-q', '-f', path]); }, expected: /holds an XFS file system/ },
  { name: 'btrfs', tool: 'mkfs.btrfs', sizeBytes: 128 * MIB, make: async (path) => { await execa('mkfs.btrfs', ['-q', '-f', path]); }, expected: /holds a btrfs file system/ },
  { name: 'MBR', tool: 'sfdisk', sizeBytes: 16 * MIB, make: async (path) => { await execa('sfdisk', ['-q', path], { input: 'label: dos\nstart=2048, type=83\n' }); }, expected: /holds an MBR \(DOS\) partition table/ },
  { name: 'GPT', tool: 'sfdisk', sizeBytes: 16 * MIB, make: async (path) => { await execa('sfdisk', ['-q', path], { input: 'label: gpt\nstart=2048\n' }); }, expected: /holds a GPT partition table/ },
  {
    // Made by hand (installing lvm2 would start udev rules on every loop device): the label as
    // LVM2 documents it, in the second sector.
    name: 'LVM2', sizeBytes: 16 * MIB, expected: /holds an LVM2 physical volume/,
    make: async (path) => { writeBytes(path, 512, Buffer.concat([Buffer.from('LABELONE'), Buffer.alloc(16), Buffer.from('LVM2 001')])); },
  },
  {
    // Likewise an md 1.2 superblock's magic and major version, 4 KiB in (mdadm would assemble it).
    name: 'md 1.2', sizeBytes: 16 * MIB, expected: /holds a Linux md RAID member \(metadata 1\.2\)/,
    make: async (path) => { const head = Buffer.alloc(8); head.writeUInt32LE(0xa92b4efc, 0); head.writeUInt32LE(1, 4); writeBytes(path, 4096, head); },
  },
];

describe('create refuses a member that holds something, unless --force', () => {
  for (const testCase of CASES) {
    it.runIf(testCase.tool === undefined || requireTool(testCase.tool))(`${testCase.name}`, async () => {
      ws = workspace();
      const members = await makeImages(ws, ['a.img', 'b.img', 'c.img'], testCase.sizeBytes);
      await testCase.make(members[2]!);
      const before = await hashAll(members);
      const refused = await ws.run(['create', '-l', '5', '-n', '3', ...members]);
      expect(refused.exitCode, refused.stderr).toBe(EXIT.FAILED);
      const { code, line } = errorLine(refused);
      expect(code).toBe('E_MEMBER_HAS_DATA');
      expect(line).toMatch(testCase.expected);
      expect(line).toContain(members[2]!);
      expect(line).toMatch(/--force/);
      expect(await hashAll(members)).toEqual(before);
      const forced = await ws.run(['create', '-l', '5', '-n', '3', '--force', ...members]);
      expect(forced.exitCode, forced.stderr).toBe(EXIT.OK);
    });
  }
});

describe.runIf(loopSuiteEnabled() && requireTool('mkfs.ext4'))('create refuses a mounted loop device', () => {
  it('even with --force, naming the mount point, and writes nothing', async () => {
    ws = workspace();
    const files = await makeImages(ws, ['a.img', 'b.img', 'c.img'], 32 * MIB);
    await execa('mkfs.ext4', ['-q', '-F', files[0]!]);
    const loops: string[] = [];
    for (const file of files) {
      const loop = (await execa('losetup', ['-f', '--show', file])).stdout.trim();
      loops.push(loop);
      cleanups.push(() => detachLoop(loop));
    }
    mkdirSync(ws.path('mnt'));
    await execa('mount', [loops[0]!, ws.path('mnt')]);
    cleanups.push(() => execa('umount', [ws.path('mnt')], { reject: false }));
    const before = await hashAll(files.slice(1));
    for (const force of [[], ['--force']]) {
      const result = await ws.run(['create', '-l', '5', '-n', '3', ...force, ...loops]);
      expect(result.exitCode, result.stderr).toBe(EXIT.FAILED);
      const { code, line } = errorLine(result);
      expect(code).toBe('E_MEMBER_BUSY');
      expect(line).toContain(`${loops[0]} is in use: mounted on ${ws.path('mnt')}`);
    }
    expect(await hashAll(files.slice(1))).toEqual(before);
  });
});
