// Proves: the README quick start works: create a RAID-5 on four members, write a file, read it back, detail.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, workspace, readJson, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`quick start on ${backend.name}`, () => {
    let ws: Workspace;
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('creates, writes, reads back and shows detail', async () => {
      ws = workspace();
      const members = backend.name === 'image files'
        ? ['a.img', 'b.img', 'c.img', 'd.img'].map((name) => ws.path(name))
        : await backend.members(ws, 4, 64 * MIB);
      const sizeArgs = backend.name === 'image files' ? ['--size', '64M'] : [];
      const create = await ws.run(['create', '--level', '5', '--raid-devices', '4', '--chunk', '64K', '--name', 'r5', ...sizeArgs, '--save-config', ...members]);
      expect(create.stderr).toBe('');
      expect(create.exitCode).toBe(EXIT.OK);
      expect(create.stdout).toContain('created RAID-5 array r5');

      const payload = randomBytes(3 * MIB + 1234);
      writeFileSync(ws.path('payload.bin'), payload);
      const write = await ws.run(['write', 'r5', '--offset', '100000', '--input', ws.path('payload.bin')]);
      expect(write.exitCode).toBe(EXIT.OK);
      expect(write.stdout).toContain(`wrote ${payload.length} bytes at offset 100000`);

      const read = await ws.run(['read', 'r5', '--offset', '100000', '--length', String(payload.length), '--output', ws.path('back.bin')]);
      expect(read.exitCode).toBe(EXIT.OK);
      expect(readFileSync(ws.path('back.bin')).equals(payload)).toBe(true);

      const detail = await ws.run(['detail', 'r5', '--json']);
      expect(detail.exitCode).toBe(EXIT.OK);
      const info = readJson(detail.stdout);
      expect(info).toMatchObject({ name: 'r5', level: 5, layout: 'left-symmetric', chunkSizeBytes: 65536, raidDevices: 4, state: 'clean', consistencyPolicy: 'dirty-log' });
      expect(info.members.map((m: { path: string }) => m.path)).toEqual(members);
      expect(info.members.every((m: { state: string }) => m.state === 'active')).toBe(true);
      expect(info.arraySizeBytes).toBe(3 * (64 * MIB - 4 * MIB));

      const text = await ws.run(['detail', 'r5']);
      expect(text.stdout).toMatch(/Raid Level : raid5/);
      expect(text.stdout).toMatch(/State : clean/);
    });
  });
}
