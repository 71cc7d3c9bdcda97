// Proves: while a throttled scrub runs, detail says it is running and who runs it (a CLI
// process, or the daemon serving the array), not "interrupted"; once a repairing scrub (the
// kind that keeps a checkpoint) is killed, detail says it was interrupted and how to resume
// it; a killed check-only scrub leaves nothing behind; once a scrub finishes, none is shown.
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

/** Waits until `probe` holds (the checkpoint reaches the superblocks once a second). */
async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  for (const started = Date.now(); Date.now() - started < timeoutMs;) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`detail during a scrub on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('running, then interrupted, then gone; directly and through the daemon', async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = await backend.members(ws, 3, 12 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['write', 'r5', '-o', '0'], { input: randomBytes(8 * MIB) })).exitCode).toBe(EXIT.OK);

      // 16 MiB of array data at 1300 KiB/s: about 12 s.
      const scrub = execa(JRAID_BIN, ['scrub', 'r5', '--repair', '--max-speed', '1300K'], { reject: false, env: { JRAID_CONFIG: ws.config, ...env } });
      pids.push(scrub.pid!);
      await until(async () => readJson((await ws.run(['detail', 'r5', '--json'])).stdout).scrubOffsetBytes > 0, 'the first scrub checkpoint');
      const running = await ws.run(['detail', 'r5']);
      expect(running.exitCode).toBe(EXIT.OK);
      expect(running.stdout).toMatch(new RegExp(`Scrub Status : running, \\d+\\.\\d% checked \\(pid ${scrub.pid}: jraid scrub r5 --repair --max-speed 1300K\\)`));
      expect(running.stdout).not.toMatch(/interrupted/);
      expect(readJson((await ws.run(['detail', 'r5', '--json'])).stdout).scrubStatus).toMatchObject({ state: 'running', pid: scrub.pid, operation: 'scrub' });

      scrub.kill('SIGKILL');
      await scrub;
      const interrupted = await ws.run(['detail', 'r5']);
      expect(interrupted.stdout).toMatch(/Scrub Status : interrupted at \d+\.\d%; jraid scrub --repair resumes it/);
      const stopped = readJson((await ws.run(['detail', 'r5', '--json'])).stdout);
      expect(stopped.scrubStatus).toMatchObject({ state: 'interrupted', pid: null });
      expect(stopped.scrubStatus.percent).toBeGreaterThan(0);

      // A check-only scrub writes nothing, not even a checkpoint: killed, it leaves no trace.
      const resumed = await ws.run(['scrub', 'r5', '--repair']);
      expect(resumed.exitCode).toBe(EXIT.OK);
      const check = execa(JRAID_BIN, ['scrub', 'r5', '--max-speed', '1300K'], { reject: false, env: { JRAID_CONFIG: ws.config, ...env } });
      pids.push(check.pid!);
      // Past the one-second checkpoint interval a repairing scrub would have used.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      expect(check.exitCode).toBeNull();
      check.kill('SIGKILL');
      await check;
      const afterCheck = readJson((await ws.run(['detail', 'r5', '--json'])).stdout);
      expect(afterCheck.scrubStatus).toBeNull();
      expect(afterCheck.scrubOffsetBytes).toBe(0);

      // Through the daemon: the scrub runs inside it, and detail asks it.
      const daemon = await startDaemon(ws, 'r5');
      pids.push(daemon.pid);
      const served = execa(JRAID_BIN, ['scrub', 'r5', '--restart', '--max-speed', '1300K', '--json'], { reject: false, env: { JRAID_CONFIG: ws.config, ...env } });
      await until(async () => readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout).scrubStatus?.percent > 0, 'scrub progress through the daemon');
      const viaDaemon = await ws.run(['detail', 'r5'], { env });
      expect(viaDaemon.stdout).toMatch(new RegExp(`Scrub Status : running, \\d+\\.\\d% checked \\(pid ${daemon.pid}: jraid daemon r5`));
      expect(readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout).scrubStatus).toMatchObject({ state: 'running', pid: daemon.pid });
      const done = await served;
      expect(done.exitCode).toBe(EXIT.OK);
      const after = await ws.run(['detail', 'r5'], { env });
      expect(after.stdout).not.toMatch(/Scrub Status/);
      expect(readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout).scrubStatus).toBeNull();
      expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    });
  });
}
