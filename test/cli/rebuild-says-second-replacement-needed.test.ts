// Proves: a rebuild of a RAID-6 that lost two roles, given one replacement, rebuilds one role
// and says (in text and --json) that the other is still lost and needs a second replacement
// or a spare, directly and through the daemon; a second rebuild then makes the array whole.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`rebuild with two roles lost on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    for (const served of [false, true]) {
      it(`one replacement for two lost roles${served ? ', through the daemon' : ''}`, async () => {
        ws = workspace();
        const env = daemonEnv(ws);
        const members = await backend.members(ws, 4, 8 * MIB);
        const replacements = await backend.members(ws, 2, 8 * MIB, 'r');
        expect((await ws.run(['create', '-l', '6', '-n', '4', '-c', '16K', '-N', 'six', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
        const payload = randomBytes(2 * MIB);
        expect((await ws.run(['write', 'six', '-o', '0'], { input: payload })).exitCode).toBe(EXIT.OK);
        expect((await ws.run(['fail-disk', 'six', members[1]!])).exitCode).toBe(EXIT.DEGRADED);
        expect((await ws.run(['fail-disk', 'six', members[3]!])).exitCode).toBe(EXIT.DEGRADED);
        if (served) pids.push((await startDaemon(ws, 'six')).pid);

        const text = await ws.run(['rebuild', 'six', '--replacement', replacements[0]!], { env });
        expect(text.exitCode).toBe(EXIT.DEGRADED);
        expect(text.stdout).toMatch(new RegExp(`rebuilt role 1 onto ${replacements[0]}`));
        expect(text.stdout).toMatch(/role 3 is still lost: it needs a second replacement or a spare/);
        expect(text.stdout).toContain('jraid rebuild six --replacement PATH');

        const again = await ws.run(['rebuild', 'six', '--replacement', replacements[1]!, '--json'], { env });
        expect(again.exitCode).toBe(EXIT.OK);
        const outcome = readJson(again.stdout);
        expect(outcome.rebuilt).toEqual([expect.objectContaining({ role: 3, path: replacements[1] })]);
        expect(outcome).toMatchObject({ state: 'clean', degraded: false, lostRoles: [], hint: null });
        const read = await ws.run(['read', 'six', '-o', '0', '-l', String(payload.length), '--output', ws.path('back')], { env });
        expect(read.exitCode).toBe(EXIT.OK);
        if (served) expect((await ws.run(['stop', 'six'], { env })).exitCode).toBe(EXIT.OK);
      });
    }

    it('--json names the role still lost and what it needs', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 8 * MIB);
      const [replacement] = await backend.members(ws, 1, 8 * MIB, 'r');
      expect((await ws.run(['create', '-l', '6', '-n', '4', '-c', '16K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      expect((await ws.run(['fail-disk', spec, members[0]!])).exitCode).toBe(EXIT.DEGRADED);
      expect((await ws.run(['fail-disk', spec, members[2]!])).exitCode).toBe(EXIT.DEGRADED);
      const json = await ws.run(['rebuild', spec, '--replacement', replacement!, '--json']);
      expect(json.exitCode).toBe(EXIT.DEGRADED);
      const outcome = readJson(json.stdout);
      expect(outcome.rebuilt).toEqual([expect.objectContaining({ role: 0, path: replacement })]);
      expect(outcome).toMatchObject({ degraded: true, lostRoles: [2] });
      expect(outcome.hint).toMatch(/role 2 is still lost: it needs a second replacement or a spare/);
    });
  });
}
