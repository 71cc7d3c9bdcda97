// Proves: a member read error (injected with JRAID_FAULTS) is rebuilt by read, which writes nothing,
// and rewritten and counted by scrub --repair (shown by detail); add, fail-disk, rebuild, re-add
// and scrub refuse bad input clearly, writing nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, hashAll, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`read errors and bad input on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('a latent read error is rebuilt and returned by read (which writes nothing), then rewritten and counted by scrub --repair', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 8 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '16K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      const payload = randomBytes(1 * MIB);
      writeFileSync(ws.path('p'), payload);
      expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('p')])).exitCode).toBe(EXIT.OK);
      // Member 1, stripe 1 (where it holds data chunk 2 of left-symmetric), third block: a bad sector range.
      const bad = 4 * MIB + 1 * 16384 + 8192;
      const faults = JSON.stringify([{ path: members[1], badReadRanges: [[bad, bad + 4096]] }]);
      const before = await hashAll(members);
      const read = await ws.run(['read', spec, '-o', '0', '-l', '1M', '--output', ws.path('back')], { env: { JRAID_FAULTS: faults } });
      expect(read.exitCode).toBe(EXIT.OK);
      expect(readFileSync(ws.path('back')).equals(payload)).toBe(true);
      expect(read.stderr).toMatch(/read error on .* rebuilt from parity; not rewritten .*scrub --repair/);
      expect(await hashAll(members)).toEqual(before);
      const check = await ws.run(['scrub', spec], { env: { JRAID_FAULTS: faults } });
      expect(check.exitCode).toBe(EXIT.FAILED);
      expect(check.stderr).toContain('[E_IO]');
      const repair = await ws.run(['scrub', spec, '--repair', '--json'], { env: { JRAID_FAULTS: faults } });
      expect(repair.exitCode, repair.stderr).toBe(EXIT.OK);
      const detail = readJson((await ws.run(['detail', '--json', spec])).stdout);
      expect(detail.members[1]).toMatchObject({ state: 'active', readErrorsCorrected: 1 });
      expect(detail.state).toBe('clean');
      expect((await ws.run(['detail', spec])).stdout).toMatch(/ReadErrors/);
    });

    it('refuses bad input to add, fail-disk, rebuild, re-add and scrub', async () => {
      ws = workspace();
      const members = await backend.members(ws, 3, 8 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-N', 'first', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      const small = await backend.members(ws, 1, 5 * MIB, 'small');
      const foreign = await backend.members(ws, 3, 8 * MIB, 'f');
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-N', 'other', ...foreign])).exitCode).toBe(EXIT.OK);
      const before = await hashAll([...members, ...small, ...foreign]);
      const cases: [string[], number, RegExp, string][] = [
        [['add', spec, small[0]!], EXIT.FAILED, /this array needs members of at least/, 'E_MEMBER_TOO_SMALL'],
        [['add', spec, foreign[0]!], EXIT.FAILED, /already belongs to array other/, 'E_MEMBER_FOREIGN'],
        [['add', spec, members[1]!], EXIT.FAILED, /is already a member of this array/, 'E_MEMBER_DUPLICATE'],
        [['add', spec, ws.path('nope')], EXIT.FAILED, /does not exist/, 'E_MEMBER_MISSING'],
        [['fail-disk', spec, foreign[1]!], EXIT.FAILED, /is not a member of this array/, 'E_MEMBER_UNKNOWN'],
        [['rebuild', spec], EXIT.OK, /nothing to rebuild/, ''],
        [['rebuild', spec, '--max-speed', 'fast'], EXIT.USAGE, /"fast" is not a rate/, ''],
        [['re-add', spec, foreign[1]!], EXIT.FAILED, /is not one of this array's members/, 'E_MEMBER_UNKNOWN'],
        [['re-add', spec, members[0]!], EXIT.FAILED, /is already active/, 'E_REFUSED'],
        [['scrub', spec, '--max-speed', '0'], EXIT.USAGE, /is not a rate/, ''],
        [['fail-disk', spec], EXIT.USAGE, /missing required argument 'member'/, ''],
      ];
      for (const [args, exitCode, message, code] of cases) {
        const result = await ws.run(args);
        expect(result.exitCode, args.join(' ')).toBe(exitCode);
        expect(result.stderr + result.stdout).toMatch(message);
        if (code) expect(result.stderr).toContain(`[${code}]`);
      }
      expect(await hashAll([...members, ...small, ...foreign])).toEqual(before);
      // Degraded: scrub refuses, rebuild without a spare says what to do.
      expect((await ws.run(['fail-disk', spec, members[2]!])).exitCode).toBe(EXIT.DEGRADED);
      const scrub = await ws.run(['scrub', spec]);
      expect(scrub.exitCode).toBe(EXIT.FAILED);
      expect(scrub.stderr).toMatch(/the array is degraded.*\[E_ARRAY_DEGRADED\]/);
      const noSpare = await ws.run(['rebuild', spec]);
      expect(noSpare.exitCode).toBe(EXIT.FAILED);
      expect(noSpare.stderr).toMatch(/no spare to rebuild onto.*--replacement PATH/);
      const second = await ws.run(['fail-disk', spec, members[0]!]);
      expect(second.exitCode).toBe(EXIT.FAILED);
      expect(second.stderr).toMatch(/would leave the array unusable/);
      // add then rebuild onto the new spare.
      const [spare] = await backend.members(ws, 1, 8 * MIB, 'spare');
      const added = await ws.run(['add', spec, spare!]);
      expect(added.exitCode).toBe(EXIT.DEGRADED);
      expect(added.stdout).toMatch(/added .* as a spare; the array is degraded: run jraid rebuild/);
      const rebuilt = await ws.run(['rebuild', `${spec},${spare}`]);
      expect(rebuilt.exitCode).toBe(EXIT.OK);
      expect(rebuilt.stdout).toMatch(new RegExp(`rebuilt role 2 onto ${spare}`));
    });
  });
}
