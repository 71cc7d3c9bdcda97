// Proves: the daemon serves an array to the CLI (same output and exit codes, through its 0600
// control socket) and over NBD; a second daemon is refused naming the first; stop and SIGTERM
// drain, write a clean journal record and exit 0; a restart finds the data; bad options fail.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(async () => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`daemon lifecycle on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('serves the CLI and NBD, refuses a second daemon, stops cleanly and restarts with the data', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 40 * MIB);
      const env = daemonEnv(ws);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-N', 'served', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const daemon = await startDaemon(ws, 'served', ['--nbd', `unix:${ws.path('served.nbd')}`]);
      pids.push(daemon.pid);
      expect(daemon.nbd).toBe(`nbd+unix:///?socket=${ws.path('served.nbd')}`);
      expect(statSync(daemon.controlSocket).mode & 0o777).toBe(0o600);

      const second = await ws.run(['daemon', 'served'], { env });
      expect(second.exitCode).toBe(EXIT.FAILED);
      expect(second.stderr).toMatch(new RegExp(`in use by pid ${daemon.pid} \\(jraid daemon served`));
      expect(second.stderr).toContain('[E_ARRAY_LOCKED]');

      const payload = randomBytes(2 * MIB + 77);
      writeFileSync(ws.path('p'), payload);
      const write = await ws.run(['write', 'served', '-o', '4095', '-i', ws.path('p')], { env });
      expect(write.exitCode).toBe(EXIT.OK);
      expect(write.stdout).toContain(`wrote ${payload.length} bytes at offset 4095`);
      const read = await ws.run(['read', 'served', '-o', '4095', '-l', String(payload.length), '--output', ws.path('back')], { env });
      expect(read.exitCode).toBe(EXIT.OK);
      expect(readFileSync(ws.path('back')).equals(payload)).toBe(true);
      const detail = readJson((await ws.run(['detail', 'served', '--json'], { env })).stdout);
      expect(detail.daemon).toMatchObject({ pid: daemon.pid, toughness: 'durable' });
      expect(detail.state).toMatch(/clean|active/);
      const scrub = await ws.run(['scrub', 'served', '--json'], { env });
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);

      const stop = await ws.run(['stop', 'served'], { env });
      expect(stop.exitCode).toBe(EXIT.OK);
      expect(stop.stdout).toMatch(/stopped; the array was closed cleanly/);
      expect(alive(daemon.pid)).toBe(false);
      const after = readJson((await ws.run(['detail', 'served', '--json'], { env })).stdout);
      expect(after.daemon).toBeUndefined();
      expect(after).toMatchObject({ state: 'clean', journal: { clean: true } });
      expect((await ws.run(['stop', 'served'], { env })).stderr).toMatch(/no daemon serves served.*\[E_DAEMON\]/);

      const again = await startDaemon(ws, 'served');
      pids.push(again.pid);
      const reread = await ws.run(['read', 'served', '-o', '4095', '-l', String(payload.length), '--output', ws.path('back2')], { env });
      expect(reread.exitCode).toBe(EXIT.OK);
      expect(readFileSync(ws.path('back2')).equals(payload)).toBe(true);
      process.kill(again.pid, 'SIGTERM');
      await waitForExit(again.pid);
      expect(readJson((await ws.run(['detail', 'served', '--json'], { env })).stdout).journal.clean).toBe(true);
    });

    it('fail-disk, rebuild and scrub go through the daemon while it serves', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 24 * MIB);
      const [replacement] = await backend.members(ws, 1, 24 * MIB, 'r');
      const env = daemonEnv(ws);
      expect((await ws.run(['create', '-l', '6', '-n', '4', '-c', '16K', '-N', 'six', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const daemon = await startDaemon(ws, 'six');
      pids.push(daemon.pid);
      expect((await ws.run(['write', 'six', '-o', '0'], { env, input: randomBytes(3 * MIB) })).exitCode).toBe(EXIT.OK);
      const failed = await ws.run(['fail-disk', 'six', members[1]!, '--json'], { env });
      expect(failed.exitCode).toBe(EXIT.DEGRADED);
      expect(readJson(failed.stdout)).toMatchObject({ member: { state: 'faulty' }, state: 'degraded' });
      const rebuilt = await ws.run(['rebuild', 'six', '--replacement', replacement!, '--json'], { env });
      expect(rebuilt.exitCode).toBe(EXIT.OK);
      expect(readJson(rebuilt.stdout).rebuilt[0]).toMatchObject({ role: 1, path: replacement, mode: 'full' });
      expect(readFileSync(ws.config, 'utf8')).toContain(replacement);
      expect(readJson((await ws.run(['scrub', 'six', '--json'], { env })).stdout).mismatchCount).toBe(0);
      expect((await ws.run(['stop', 'six'], { env })).exitCode).toBe(EXIT.OK);
    });
  });
}

describe('daemon options', () => {
  afterEach(() => ws?.cleanup());

  it('refuses bad options before touching anything', async () => {
    ws = workspace();
    const members = ['a', 'b', 'c'].map((name) => ws.path(name));
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', '16M', '-N', 'opts', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const env = daemonEnv(ws);
    const cases: [string[], RegExp][] = [
      [['--toughness', 'heroic'], /unknown toughness "heroic"/],
      [['--nbd', 'tcp:10.1.2.3:10809'], /listens beyond this machine.*--listen-any/],
      [['--nbd', 'carrier-pigeon'], /is not unix:PATH or tcp:HOST:PORT/],
      [['--nbd', 'tcp:127.0.0.1:99999'], /port 99999 is out of range/],
      [['--log-level', 'chatty'], /unknown log level/],
    ];
    for (const [args, message] of cases) {
      const result = await ws.run(['daemon', 'opts', ...args], { env });
      expect(result.exitCode, args.join(' ')).toBe(EXIT.USAGE);
      expect(result.stderr).toMatch(message);
    }
    const nobody = await ws.run(['daemon', 'ghost'], { env });
    expect(nobody.exitCode).toBe(EXIT.FAILED);
    expect(nobody.stderr).toMatch(/no array "ghost"/);
  });
});

describe('daemon log', () => {
  afterEach(() => ws?.cleanup());

  it('logs a member failure at error level and a repaired read error at warn level', async () => {
    ws = workspace();
    const members = ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`));
    expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '16K', '-z', '16M', '-N', 'logged', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['write', 'logged', '-o', '0'], { input: randomBytes(MIB) })).exitCode).toBe(EXIT.OK);
    // Member 1 holds data chunk 2 of stripe 1 (left-symmetric): a bad sector there.
    const bad = 4 * MIB + 16384 + 8192;
    const faults = { JRAID_FAULTS: JSON.stringify([{ path: members[1], badReadRanges: [[bad, bad + 4096]] }]) };
    const daemon = await startDaemon(ws, 'logged', ['--log', ws.path('daemon.log')], faults);
    pids.push(daemon.pid);
    const read = await ws.run(['read', 'logged', '-o', '0', '-l', '1M', '--output', ws.path('back')], { env: daemonEnv(ws) });
    expect(read.exitCode).toBe(EXIT.OK);
    expect((await ws.run(['fail-disk', 'logged', members[3]!], { env: daemonEnv(ws) })).exitCode).toBe(EXIT.DEGRADED);
    expect((await ws.run(['stop', 'logged'], { env: daemonEnv(ws) })).exitCode).toBe(EXIT.OK);
    const log = readFileSync(ws.path('daemon.log'), 'utf8');
    expect(log).toMatch(/ error member .*d\.img \(role 3\) failed: failed by fail-disk; the array runs degraded/);
    expect(log).toMatch(/ warn  read error on .*b\.img at member data byte 24576: rebuilt from parity and rewritten/);
    expect(log).toMatch(/ info  stopping \(jraid stop\)/);
  });
});
