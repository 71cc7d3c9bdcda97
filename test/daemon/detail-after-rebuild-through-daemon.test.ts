// Proves: detail through the daemon reports the array as it is now, not as it was assembled:
// after a fail-disk and a rebuild served by the daemon it is clean with no note saying it runs
// degraded, the replacement has its path, and every member's event count is current.
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { examine } from '../helpers/examine.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

interface Member { number: number; path: string | null; state: string; role: number | null; events: number | null }

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`detail through the daemon on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('after a rebuild: clean, current events, the replacement named', async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = await backend.members(ws, 3, 12 * MIB);
      const [replacement] = await backend.members(ws, 1, 12 * MIB, 'r');
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['fail-disk', 'r5', members[1]!])).exitCode).toBe(EXIT.DEGRADED);
      const daemon = await startDaemon(ws, 'r5');
      pids.push(daemon.pid);
      const degraded = await ws.run(['detail', 'r5', '--json'], { env });
      expect(degraded.exitCode).toBe(EXIT.DEGRADED);
      expect(readJson(degraded.stdout).notes).toEqual(['role 1 is missing: the array runs degraded']);

      expect((await ws.run(['rebuild', 'r5', '--replacement', replacement!], { env })).exitCode).toBe(EXIT.OK);
      const text = await ws.run(['detail', 'r5'], { env });
      expect(text.exitCode).toBe(EXIT.OK);
      expect(text.stdout).toMatch(/State : clean/);
      expect(text.stdout).not.toMatch(/degraded|missing/);
      const detail = readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout);
      expect(detail).toMatchObject({ state: 'clean', notes: [], activeDevices: 3, failedDevices: 1, totalDevices: 4 });
      const rows = detail.members as Member[];
      expect(rows.find((member) => member.path === replacement)).toMatchObject({ role: 1, state: 'active', events: detail.events });
      expect(rows.find((member) => member.path === members[1])).toMatchObject({ role: null, state: 'faulty' });
      for (const member of rows.filter((row) => row.state === 'active')) {
        expect(member.events).toBe(detail.events);
        // The count shown is the one on the member's own superblock.
        expect((await examine(ws, member.path!)).superblock.events).toBe(detail.events);
      }
      // The failed member kept the count it had when it failed: it is shown as it is on disk.
      const failed = rows.find((member) => member.path === members[1])!;
      expect(failed.events).toBe((await examine(ws, members[1]!)).superblock.events);
      expect(failed.events).toBeLessThan(detail.events);
      expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    });
  });
}
