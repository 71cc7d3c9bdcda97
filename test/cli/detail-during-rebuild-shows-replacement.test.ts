// Proves: while a rebuild runs onto a replacement, detail on the array named from the config
// file shows the replacement (path, rebuilding, percent) and a Rebuild Status saying it runs and
// who runs it; after the rebuild is killed it says interrupted, and `rebuild` without
// --replacement resumes it from the config file; the same through the daemon.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { EXIT, JRAID_BIN, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  for (const started = Date.now(); Date.now() - started < timeoutMs;) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Member { path: string | null; state: string; role: number | null; recoveryOffsetBytes: number }

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`detail during a rebuild on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('shows the replacement rebuilding, running then interrupted, and resumes from the config', async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = await backend.members(ws, 3, 20 * MIB);
      const replacements = await backend.members(ws, 2, 20 * MIB, 'r');
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['write', 'r5', '-o', '0'], { input: randomBytes(16 * MIB) })).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['fail-disk', 'r5', members[1]!])).exitCode).toBe(EXIT.DEGRADED);

      // 16 MiB of member data, 32 MiB of array data at 2 MiB/s: about 16 s.
      const rebuild = execa(JRAID_BIN, ['rebuild', 'r5', '--replacement', replacements[0]!, '--max-speed', '2M'], { reject: false, env: { JRAID_CONFIG: ws.config, ...env } });
      pids.push(rebuild.pid!);
      const replacementRow = async (): Promise<Member | undefined> =>
        (readJson((await ws.run(['detail', 'r5', '--json'])).stdout).members as Member[]).find((member) => member.path === replacements[0]);
      await until(async () => ((await replacementRow())?.recoveryOffsetBytes ?? 0) > 0, 'the replacement in detail with a checkpoint');
      const during = await ws.run(['detail', 'r5']);
      expect(during.exitCode).toBe(EXIT.DEGRADED);
      expect(during.stdout).toMatch(new RegExp(`1\\s+rebuilding \\d+\\.\\d%\\s+\\d+\\s+0\\s+${replacements[0]}`));
      expect(during.stdout).toMatch(new RegExp(`Rebuild Status : \\d+(\\.\\d)?% complete, running \\(pid ${rebuild.pid}: jraid rebuild r5 --replacement`));
      expect(during.stdout).not.toMatch(/missing/);
      const json = readJson((await ws.run(['detail', 'r5', '--json'])).stdout);
      expect(json.rebuildStatus).toMatchObject({ state: 'running', pid: rebuild.pid, operation: 'rebuild' });
      expect(json.rebuildPercent).toBeGreaterThan(0);
      expect(json.members.filter((member: Member) => member.state === 'missing')).toEqual([]);

      rebuild.kill('SIGKILL');
      await rebuild;
      const killed = await ws.run(['detail', 'r5']);
      expect(killed.stdout).toMatch(new RegExp(`rebuilding \\d+\\.\\d%\\s+\\d+\\s+0\\s+${replacements[0]}`));
      expect(killed.stdout).toMatch(/Rebuild Status : \d+(\.\d)?% complete, interrupted; jraid rebuild resumes it/);
      expect(readJson((await ws.run(['detail', 'r5', '--json'])).stdout).rebuildStatus).toMatchObject({ state: 'interrupted', pid: null });
      const resumed = await ws.run(['rebuild', 'r5', '--json']);
      expect(resumed.exitCode).toBe(EXIT.OK);
      expect(readJson(resumed.stdout).rebuilt[0].resumedFromBytes).toBeGreaterThan(0);
      const whole = await ws.run(['detail', 'r5', '--json']);
      expect(whole.exitCode).toBe(EXIT.OK);
      expect(readJson(whole.stdout)).toMatchObject({ state: 'clean', rebuildStatus: null, rebuildPercent: null });

      // Through the daemon: the rebuild runs inside it, and detail asks it.
      expect((await ws.run(['fail-disk', 'r5', members[2]!])).exitCode).toBe(EXIT.DEGRADED);
      const daemon = await startDaemon(ws, 'r5');
      pids.push(daemon.pid);
      const served = execa(JRAID_BIN, ['rebuild', 'r5', '--replacement', replacements[1]!, '--max-speed', '2M'], { reject: false, env: { JRAID_CONFIG: ws.config, ...env } });
      await until(async () => readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout).rebuildPercent > 0, 'rebuild progress through the daemon');
      const viaDaemon = await ws.run(['detail', 'r5'], { env });
      expect(viaDaemon.exitCode).toBe(EXIT.DEGRADED);
      expect(viaDaemon.stdout).toMatch(new RegExp(`rebuilding \\d+\\.\\d%\\s+\\d+\\s+0\\s+${replacements[1]}`));
      expect(viaDaemon.stdout).toMatch(new RegExp(`Rebuild Status : \\d+(\\.\\d)?% complete, running \\(pid ${daemon.pid}: jraid daemon r5`));
      expect((await served).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    });
  });
}
