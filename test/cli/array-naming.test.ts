// Proves: commands name an array by config name, uuid, comma-joined member paths, or one member
// listed in the config; unknown names fail with a hint.
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('naming an array', () => {
  it('by name, uuid, member list and single member', async () => {
    ws = workspace();
    const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
    const created = await ws.run(['create', '-l', '4', '-n', '3', '-z', '16M', '-N', 'named', '--save-config', '--json', ...members]);
    expect(created.exitCode).toBe(EXIT.OK);
    const { uuid } = readJson(created.stdout);
    for (const spec of ['named', uuid, members.join(','), members[1]!]) {
      const detail = await ws.run(['detail', '--json', spec]);
      expect(detail.exitCode).toBe(EXIT.OK);
      expect(readJson(detail.stdout)).toMatchObject({ name: 'named', uuid, level: 4, layout: 'parity-last' });
    }
  });

  it('unknown names and lone members outside the config fail with a hint', async () => {
    ws = workspace();
    const unknown = await ws.run(['detail', 'ghost']);
    expect(unknown.exitCode).toBe(EXIT.FAILED);
    expect(unknown.stderr).toMatch(/no array "ghost" in .*jraid.conf, and it is not a member list/);
    const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', '16M', ...members])).exitCode).toBe(EXIT.OK);
    const lone = await ws.run(['detail', members[0]!]);
    expect(lone.exitCode).toBe(EXIT.FAILED);
    expect(lone.stderr).toMatch(/is one member of array .* does not list its members/);
    expect(lone.stderr).toContain('[E_ARRAY_UNKNOWN]');
  });
});
