// Proves: assemble takes members in any order, refuses foreign and duplicated members, names
// missing and stale members, falls back to the secondary superblock, and uses the config file.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { openSync, writeSync, closeSync, writeFileSync, readFileSync } from 'node:fs';
import { EXIT, hashAll, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`assemble on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    async function makeArray(level = 5, count = 4, name = 'r', prefix = 'm'): Promise<string[]> {
      const members = await backend.members(ws, count, 16 * MIB, prefix);
      const created = await ws.run(['create', '-l', String(level), '-n', String(count), '-c', '16K', '-N', name, ...members]);
      expect(created.exitCode).toBe(EXIT.OK);
      return members;
    }

    it('accepts members in shuffled order and orders them by role', async () => {
      ws = workspace();
      const members = await makeArray(6, 5);
      const shuffled = [members[3]!, members[0]!, members[4]!, members[2]!, members[1]!];
      const result = await ws.run(['assemble', '--json', ...shuffled]);
      expect(result.exitCode).toBe(EXIT.OK);
      const report = readJson(result.stdout);
      expect(report.state).toBe('clean');
      for (const member of report.members) expect(member.path).toBe(members[member.role]);
      const detail = readJson((await ws.run(['detail', '--json', shuffled.join(',')])).stdout);
      expect(detail.members.map((m: { path: string }) => m.path)).toEqual(members);
    });

    it('refuses a member of another array, and a member given twice', async () => {
      ws = workspace();
      const members = await makeArray(5, 3, 'one', 'a');
      const others = await makeArray(5, 3, 'two', 'b');
      const before = await hashAll([...members, ...others]);
      const mixed = await ws.run(['assemble', members[0]!, members[1]!, others[2]!]);
      expect(mixed.exitCode).toBe(EXIT.FAILED);
      expect(mixed.stderr).toMatch(new RegExp(`${others[2]} belongs to array two .* not to one`));
      expect(mixed.stderr).toContain('[E_MIXED_ARRAYS]');
      const twice = await ws.run(['assemble', members[0]!, members[1]!, members[1]!]);
      expect(twice.exitCode).toBe(EXIT.FAILED);
      expect(twice.stderr).toContain('[E_MEMBER_DUPLICATE]');
      expect(await hashAll([...members, ...others])).toEqual(before);
    });

    it('runs degraded without one member, and refuses with two missing on RAID-5', async () => {
      ws = workspace();
      const members = await makeArray(5, 4);
      const data = randomBytes(200_000);
      writeFileSync(ws.path('data'), data);
      expect((await ws.run(['write', members.join(','), '--offset', '5000', '--input', ws.path('data')])).exitCode).toBe(EXIT.OK);
      const degraded = await ws.run(['assemble', '--json', members[0]!, members[1]!, members[3]!]);
      expect(degraded.exitCode).toBe(EXIT.DEGRADED);
      expect(readJson(degraded.stdout)).toMatchObject({ state: 'degraded', missingRoles: [2] });
      const read = await ws.run(['read', [members[0], members[1], members[3]].join(','), '--offset', '5000', '--length', '200000', '--output', ws.path('back')]);
      expect(read.exitCode).toBe(EXIT.DEGRADED);
      expect(readFileSync(ws.path('back')).equals(data)).toBe(true);
      const failed = await ws.run(['assemble', members[0]!, members[1]!]);
      expect(failed.exitCode).toBe(EXIT.FAILED);
      expect(failed.stderr).toMatch(/cannot run: 2 of 4 raid devices missing \(roles 2, 3\)/);
    });

    it('names a stale member by its event count, and --force takes it back only when needed', async () => {
      ws = workspace();
      const members = await makeArray(5, 3);
      // Write while member 2 is absent: it is recorded faulty and becomes stale.
      expect((await ws.run(['write', `${members[0]},${members[1]}`, '--offset', '0'], { input: 'hello' })).exitCode).toBe(EXIT.DEGRADED);
      const result = await ws.run(['assemble', '--json', ...members]);
      expect(result.exitCode).toBe(EXIT.DEGRADED);
      const report = readJson(result.stdout);
      expect(report.stale).toEqual([members[2]]);
      const stale = report.members.find((m: { path: string }) => m.path === members[2]);
      expect(stale.excluded).toMatch(/^stale: events \d+ < \d+$/);
      const text = await ws.run(['assemble', ...members]);
      expect(text.stderr).toMatch(new RegExp(`${members[2]}: left out, stale: events`));
      // Without member 1 the array needs the stale one: refused, then --force.
      const refused = await ws.run(['assemble', members[0]!, members[2]!]);
      expect(refused.exitCode).toBe(EXIT.FAILED);
      expect(refused.stderr).toMatch(/can be forced back with --force/);
      const forced = await ws.run(['assemble', '--force', '--json', members[0]!, members[2]!]);
      expect(forced.exitCode).toBe(EXIT.DEGRADED);
      expect(readJson(forced.stdout).forced).toEqual([members[2]]);
    });

    it('falls back to the secondary superblock when the primary is corrupt, and repairs it', async () => {
      ws = workspace();
      const members = await makeArray(5, 3);
      const fd = openSync(members[1]!, 'r+');
      writeSync(fd, Buffer.from('garbage!'), 0, 8, 100);
      closeSync(fd);
      const examined = readJson((await ws.run(['examine', '--json', members[1]!])).stdout);
      expect(examined.examined[0].primaryProblem).toMatch(/bad checksum/);
      const result = await ws.run(['assemble', ...members]);
      expect(result.exitCode).toBe(EXIT.OK);
      expect(result.stderr).toMatch(/primary superblock is bad \(bad checksum.*rewritten from the secondary copy/);
      const after = readJson((await ws.run(['examine', '--json', members[1]!])).stdout);
      expect(after.examined[0].primaryProblem).toBeNull();
    });

    it('refuses a path that is not a jraid member', async () => {
      ws = workspace();
      const members = await makeArray(5, 3);
      const blank = await backend.members(ws, 1, 16 * MIB, 'blank');
      const result = await ws.run(['assemble', members[0]!, members[1]!, blank[0]!]);
      expect(result.exitCode).toBe(EXIT.FAILED);
      expect(result.stderr).toMatch(/carries no jraid superblock/);
      expect(result.stderr).toContain('[E_MEMBER_NOT_JRAID]');
    });
  });
}

describe('assemble with the config file', () => {
  afterEach(() => ws?.cleanup());

  it('--save-config writes an ARRAY line and --scan assembles from it', async () => {
    ws = workspace();
    const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', '16M', '-N', 'cfg', ...members])).exitCode).toBe(EXIT.OK);
    const saved = await ws.run(['assemble', '--save-config', ...members]);
    expect(saved.exitCode).toBe(EXIT.OK);
    const config = readFileSync(ws.config, 'utf8');
    expect(config).toMatch(new RegExp(`^ARRAY cfg UUID=[0-9a-f-]{36} devices=${members.join(',')}$`, 'm'));
    const scan = await ws.run(['assemble', '--scan', '--json']);
    expect(scan.exitCode).toBe(EXIT.OK);
    expect(readJson(scan.stdout).arrays[0]).toMatchObject({ name: 'cfg', state: 'clean' });
    const unknown = await ws.run(['assemble', '--scan', 'nosuch']);
    expect(unknown.exitCode).toBe(EXIT.FAILED);
    expect(unknown.stderr).toMatch(/lists no array nosuch/);
  });

  it('--scan without a config file, and a corrupt config file, fail clearly', async () => {
    ws = workspace();
    const missing = await ws.run(['assemble', '--scan']);
    expect(missing.exitCode).toBe(EXIT.FAILED);
    expect(missing.stderr).toMatch(/cannot read config file .*jraid.conf: ENOENT/);
    expect(missing.stderr).toContain('[E_CONFIG]');
    writeFileSync(ws.config, 'ARRAY good devices=/x,/y\nFROB nonsense\n');
    const corrupt = await ws.run(['assemble', '--scan']);
    expect(corrupt.exitCode).toBe(EXIT.FAILED);
    expect(corrupt.stderr).toMatch(/jraid.conf:2: unknown keyword "FROB"/);
  });
});
