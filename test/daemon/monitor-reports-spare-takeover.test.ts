// Proves: jraid monitor --json reports, with mdadm's event names, a member of a served array
// failing and the daemon rebuilding onto the spare (Fail, DegradedArray, RebuildStarted,
// RebuildFinished, SpareActive), the daemon logs the same events, and the data verifies.
// Without a daemon, changes (a scrub's result, a failure) are found by looking every --delay. --program runs for each event;
// one that fails, or cannot run, ends the monitor with one error line.
import { afterEach, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { EXIT, JRAID_BIN, errorLine, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
let monitors: ResultPromise[] = [];
afterEach(async () => {
  for (const monitor of monitors) monitor.kill('SIGKILL');
  await Promise.allSettled(monitors);
  monitors = [];
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

interface Event { event: string; array: string; member: string | null; mismatches?: number }

/** Starts `jraid monitor ARGS --json` and collects its events as they arrive. */
function monitor(args: string[], env: Record<string, string>): { events: Event[]; until(name: string, timeoutMs?: number): Promise<Event>; process: ResultPromise } {
  const child = execa(JRAID_BIN, ['monitor', ...args, '--json'], { reject: false, env, buffer: false });
  monitors.push(child);
  const events: Event[] = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Event);
  });
  return {
    events,
    process: child,
    async until(name, timeoutMs = 90_000) {
      for (const started = Date.now(); ;) {
        const found = events.find((event) => event.event === name);
        if (found) return found;
        if (Date.now() - started > timeoutMs) throw new Error(`no ${name} event; saw ${events.map((event) => event.event).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

describe('jraid monitor', () => {
  it('follows a served array through a failure and the spare taking over', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 20 * MIB);
    const [spare] = await makeImages(ws, ['spare.img'], 20 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['add', 'r5', spare!])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5');
    pids.push(daemon.pid);
    const data = randomBytes(12 * MIB);
    expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: data })).exitCode).toBe(EXIT.OK);

    const watching = monitor(['r5', '--test'], env);
    expect(await watching.until('TestMessage')).toMatchObject({ array: 'r5', member: null });
    expect((await ws.run(['fail-disk', 'r5', members[2]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    expect(await watching.until('Fail')).toMatchObject({ array: 'r5', member: members[2] });
    await watching.until('DegradedArray');
    expect(await watching.until('RebuildStarted')).toMatchObject({ member: spare });
    expect(await watching.until('RebuildFinished')).toMatchObject({ member: spare });
    expect(await watching.until('SpareActive')).toMatchObject({ member: spare });
    const names = watching.events.map((event) => event.event);
    expect(names.indexOf('RebuildStarted')).toBeLessThan(names.indexOf('RebuildFinished'));
    expect(names.filter((name) => /^Rebuild\d\d$/.test(name))).toEqual(['Rebuild20', 'Rebuild40', 'Rebuild60', 'Rebuild80']);
    for (const name of ['Fail', 'DegradedArray', 'RebuildStarted', 'RebuildFinished', 'SpareActive']) expect(daemonLog(ws)).toContain(`event ${name} r5`);

    expect((await ws.run(['read', 'r5', '--offset', '0', '--length', String(data.length), '--output', ws.path('out')], { env })).exitCode).toBe(EXIT.OK);
    expect(readFileSync(ws.path('out')).equals(data)).toBe(true);
    // The daemon going away is an event too; the monitor then ends cleanly on SIGTERM.
    expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    await watching.until('DeviceDisappeared');
    watching.process.kill('SIGTERM');
    expect((await watching.process).exitCode).toBe(EXIT.OK);
  });

  it('without a daemon, a failure is found by looking every --delay', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const watching = monitor(['--test', '--delay', '1'], env);
    await watching.until('TestMessage');
    // Where the run directory exists (systemd makes it), a scrub without a daemon records its result.
    mkdirSync(env.JRAID_RUN_DIR!, { recursive: true, mode: 0o700 });
    expect((await ws.run(['scrub', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    expect(await watching.until('ScrubFinished')).toMatchObject({ array: 'r5', mismatches: 0 });
    expect((await ws.run(['fail-disk', 'r5', members[0]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    expect(await watching.until('Fail')).toMatchObject({ array: 'r5', member: members[0] });
    await watching.until('DegradedArray');
  });

  it('--oneshot: DegradedArray for a degraded array; --program gets EVENT ARRAY [MEMBER]', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['fail-disk', 'r5', members[0]!])).exitCode).toBe(EXIT.DEGRADED);
    const script = ws.path('notify.sh');
    writeFileSync(script, `#!/bin/sh\necho "$@" >> ${ws.path('calls')}\n`);
    chmodSync(script, 0o755);
    const result = await ws.run(['monitor', '--oneshot', '--test', '--program', script], { env });
    expect(result.exitCode).toBe(EXIT.OK);
    expect(result.stdout).toMatch(/TestMessage r5: /);
    expect(readFileSync(ws.path('calls'), 'utf8')).toBe('TestMessage r5\nDegradedArray r5\n');
  });

  it('a program that fails, or cannot run, ends the monitor with one error line', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const failing = await ws.run(['monitor', '--test', '--program', 'false', '--delay', '1'], { env, timeoutMs: 30_000 });
    expect(failing.exitCode).toBe(EXIT.FAILED);
    expect(errorLine(failing)).toMatchObject({ code: 'E_PROGRAM' });
    expect(failing.stderr).toMatch(/exited 1 for TestMessage r5/);
    const missing = await ws.run(['monitor', '--oneshot', '--test', '--program', ws.path('no-such-program')], { env });
    expect(missing.exitCode).toBe(EXIT.FAILED);
    expect(errorLine(missing).code).toBe('E_PROGRAM');
    expect(missing.stdout).toBe('');
    const unknown = await ws.run(['monitor', 'nosuch', '--oneshot'], { env });
    expect(errorLine(unknown).code).toBe('E_ARRAY_UNKNOWN');
  });
});
