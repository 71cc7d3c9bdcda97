// Proves: a command sent to a daemon that is stopped (SIGSTOP) fails with E_DAEMON after a few
// seconds, naming the pid and how to resume it, instead of waiting forever; once resumed the
// daemon answers again.
import { afterEach, expect, it } from 'vitest';
import { EXIT, errorLine, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) {
    if (!alive(pid)) continue;
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  }
  pids = [];
  ws?.cleanup();
});

it('detail against a SIGSTOPped daemon: E_DAEMON naming the pid, then answers after SIGCONT', async () => {
  ws = workspace();
  const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', String((8 * MIB) / 1024), '-N', 'st', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  const env = daemonEnv(ws);
  const daemon = await startDaemon(ws, 'st');
  pids.push(daemon.pid);

  process.kill(daemon.pid, 'SIGSTOP');
  const started = Date.now();
  const stuck = await ws.run(['detail', 'st', '--json'], { env, timeoutMs: 60_000 });
  const waitedMs = Date.now() - started;
  expect(stuck.exitCode).toBe(EXIT.FAILED);
  const error = errorLine(stuck);
  expect(error.code).toBe('E_DAEMON');
  expect(error.line).toContain(`pid ${daemon.pid}`);
  expect(error.line).toContain('stopped');
  expect(waitedMs, 'the CLI gave up after a bounded wait').toBeLessThan(45_000);

  process.kill(daemon.pid, 'SIGCONT');
  const answered = await ws.run(['detail', 'st', '--json'], { env });
  expect(answered.exitCode).toBe(EXIT.OK);
  expect(readJson(answered.stdout).daemon.pid).toBe(daemon.pid);
});
