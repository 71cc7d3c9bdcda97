// Proves: write and read take any offset and length, through files and pipes, and refuse
// ranges past the end (or bad sizes) before writing anything.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { EXIT, hashAll, jraidBinary, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`write and read ranges on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    async function setup(): Promise<{ members: string[]; spec: string; sizeBytes: number }> {
      ws = workspace();
      const members = await backend.members(ws, 4, 8 * MIB);
      expect((await ws.run(['create', '-l', '6', '-n', '4', '-c', '4K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      const sizeBytes = readJson((await ws.run(['detail', '--json', spec])).stdout).arraySizeBytes;
      return { members, spec, sizeBytes };
    }

    it('unaligned writes straddling blocks and stripes read back exactly, from stdin and to stdout', async () => {
      const { spec } = await setup();
      const shadow = Buffer.alloc(64 * 1024);
      for (const [offset, length] of [[1, 1], [4095, 2], [8190, 9000], [12345, 20000], [0, 4096]] as const) {
        const data = randomBytes(length);
        const write = await ws.run(['write', spec, '--offset', String(offset)], { input: data });
        expect(write.exitCode).toBe(EXIT.OK);
        data.copy(shadow, offset);
      }
      const read = await jraidBinary(['read', spec, '--offset', '0', '--length', '64K']);
      expect(read.exitCode).toBe(EXIT.OK);
      expect(read.stdout.equals(shadow)).toBe(true);
    });

    it('refuses a write past the end before writing anything', async () => {
      const { members, spec, sizeBytes } = await setup();
      writeFileSync(ws.path('big'), randomBytes(10_000));
      const before = await hashAll(members);
      const fromFile = await ws.run(['write', spec, '--offset', String(sizeBytes - 5000), '--input', ws.path('big')]);
      expect(fromFile.exitCode).toBe(EXIT.FAILED);
      expect(fromFile.stderr).toMatch(/only 5000 bytes are left in the array after the offset; nothing was written/);
      expect(fromFile.stderr).toContain('[E_OUT_OF_RANGE]');
      const fromStdin = await ws.run(['write', spec, '--offset', String(sizeBytes - 5000)], { input: randomBytes(10_000) });
      expect(fromStdin.exitCode).toBe(EXIT.FAILED);
      expect(fromStdin.stderr).toMatch(/stdin holds more than the 5000 bytes left/);
      const pastEnd = await ws.run(['write', spec, '--offset', String(sizeBytes + 1)], { input: 'x' });
      expect(pastEnd.exitCode).toBe(EXIT.FAILED);
      expect(pastEnd.stderr).toMatch(/is past the end of the array/);
      expect(await hashAll(members)).toEqual(before);
      const exactEnd = await ws.run(['write', spec, '--offset', String(sizeBytes - 3)], { input: 'end' });
      expect(exactEnd.exitCode).toBe(EXIT.OK);
    });

    it('refuses bad sizes, a missing input, reads past the end and binary to a terminal-less json', async () => {
      const { members, spec, sizeBytes } = await setup();
      const before = await hashAll(members);
      const badOffset = await ws.run(['write', spec, '--offset', '12Q'], { input: 'x' });
      expect(badOffset.exitCode).toBe(EXIT.USAGE);
      expect(badOffset.stderr).toMatch(/"12Q" is not a size/);
      const negative = await ws.run(['read', spec, '--offset', '-5', '--length', '1']);
      expect(negative.exitCode).toBe(EXIT.USAGE);
      const noInput = await ws.run(['write', spec, '--offset', '0', '--input', ws.path('nope')]);
      expect(noInput.exitCode).toBe(EXIT.FAILED);
      expect(noInput.stderr).toMatch(/input file .*nope does not exist/);
      mkdirSync(ws.path('dir'));
      const dirInput = await ws.run(['write', spec, '--offset', '0', '--input', ws.path('dir')]);
      expect(dirInput.stderr).toMatch(/is a directory/);
      const readPast = await ws.run(['read', spec, '--offset', String(sizeBytes - 1), '--length', '2', '--output', ws.path('o')]);
      expect(readPast.exitCode).toBe(EXIT.FAILED);
      expect(readPast.stderr).toMatch(/ends past the array/);
      const jsonToStdout = await ws.run(['read', spec, '--offset', '0', '--length', '1', '--json']);
      expect(jsonToStdout.exitCode).toBe(EXIT.USAGE);
      const missingLength = await ws.run(['read', spec, '--offset', '0']);
      expect(missingLength.exitCode).toBe(EXIT.USAGE);
      expect(await hashAll(members)).toEqual(before);
      const json = await ws.run(['read', spec, '--offset', '0', '--length', '3', '--output', ws.path('o'), '--json']);
      expect(readJson(json.stdout)).toMatchObject({ bytesRead: 3, offsetBytes: 0 });
      expect(readFileSync(ws.path('o')).length).toBe(3);
    });
  });
}
