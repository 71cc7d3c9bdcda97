// Proves: a standby daemon waits while the primary serves (detail shows both pids), takes the
// array over when the primary is SIGKILLed (recovery, same NBD address and control socket,
// takeover time in detail), `jraid stop` hands the array to the standby, and `stop --all` ends both.
import { afterEach, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon, waitForExit } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  for (const started = Date.now(); Date.now() - started < timeoutMs;) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('standby waits, shows in detail, takes over after SIGKILL on the same addresses, and stop/stop --all', async () => {
  ws = workspace();
  const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', String((16 * MIB) / 1024), '-N', 'sb', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  const env = daemonEnv(ws);
  const primary = await startDaemon(ws, 'sb');
  pids.push(primary.pid);
  const standby = await startDaemon(ws, 'sb', ['--standby']);
  pids.push(standby.pid);
  expect(standby.pid).not.toBe(primary.pid);

  const detail = readJson((await ws.run(['detail', 'sb', '--json'], { env })).stdout);
  expect(detail.daemon.pid).toBe(primary.pid);
  expect(detail.daemon.standby.pid).toBe(standby.pid);
  const text = (await ws.run(['detail', 'sb'], { env })).stdout;
  expect(text).toMatch(new RegExp(`Daemon : pid ${primary.pid} \\(primary\\)`));
  expect(text).toMatch(new RegExp(`Standby : pid ${standby.pid} \\(waiting`));
  expect(daemonLog(ws)).toContain(`standby: waiting for pid ${primary.pid}`);

  // Data written through the primary; the kill leaves the journal as it was.
  const data = randomBytes(3 * 65536 + 4096);
  writeFileSync(ws.path('data.bin'), data);
  expect((await ws.run(['write', 'sb', '-o', '8192', '-i', ws.path('data.bin')], { env })).exitCode).toBe(EXIT.OK);
  process.kill(primary.pid, 'SIGKILL');

  const after = await waitFor('the takeover', async () => {
    const result = await ws.run(['detail', 'sb', '--json'], { env });
    const info = result.exitCode === EXIT.OK ? readJson(result.stdout) : undefined;
    return info?.daemon?.pid === standby.pid ? info : undefined;
  });
  expect(after.daemon.takeover.previousPid).toBe(primary.pid);
  expect(after.daemon.takeover.paused).toBe(false);
  expect(after.daemon.takeover.takeoverMs).toBeGreaterThanOrEqual(0);
  expect(after.daemon.controlSocket).toBe(primary.controlSocket);
  expect(after.daemon.nbd).toEqual([primary.nbd]);
  expect(after.events).toBeGreaterThan(detail.events);
  expect((await ws.run(['detail', 'sb'], { env })).stdout).toMatch(new RegExp(`Takeover : \\d+ ms from pid ${primary.pid} \\(gone\\)`));
  expect(daemonLog(ws)).toMatch(/takeover: serving \d+ ms after the primary/);
  expect((await ws.run(['read', 'sb', '-o', '8192', '-l', String(data.length), '--output', ws.path('back.bin')], { env })).exitCode).toBe(EXIT.OK);
  expect(readFileSync(ws.path('back.bin')).equals(data)).toBe(true);

  // stop: the primary (the old standby) ends, a new standby takes over.
  const second = await startDaemon(ws, 'sb', ['--standby']);
  pids.push(second.pid);
  const stopped = readJson((await ws.run(['stop', 'sb', '--json'], { env })).stdout);
  expect(stopped).toMatchObject({ stopped: true, pid: standby.pid, standbyTakesOver: second.pid });
  await waitFor('the second takeover', async () => {
    const result = await ws.run(['detail', 'sb', '--json'], { env });
    return result.exitCode === EXIT.OK && readJson(result.stdout).daemon?.pid === second.pid ? true : undefined;
  });

  // stop --all: the standby first (it must not take over), then the primary.
  const third = await startDaemon(ws, 'sb', ['--standby']);
  pids.push(third.pid);
  const all = readJson((await ws.run(['stop', 'sb', '--all', '--json'], { env })).stdout);
  expect(all).toMatchObject({ stopped: true, pid: second.pid, standbyStopped: third.pid });
  await waitForExit(third.pid);
  expect(alive(second.pid)).toBe(false);
  const closed = readJson((await ws.run(['detail', 'sb', '--json'], { env })).stdout);
  expect(closed.daemon).toBeUndefined();
  expect(closed.journal.clean).toBe(true);
});
