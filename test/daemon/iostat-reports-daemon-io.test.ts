// Proves: jraid iostat reports, from the serving daemon, the writes clients make: per interval,
// writes/s and MB/s for the array and for each member, mean latency and journal records/s, one
// JSON object per interval with --json; without a daemon, and with a bad INTERVAL, it refuses.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { EXIT, JRAID_BIN, errorLine, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

describe('jraid iostat', () => {
  it('per-interval figures for the array and each member while writes run', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 20 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5');
    pids.push(daemon.pid);
    const first = await ws.run(['iostat', 'r5', '--json'], { env });
    expect(first.exitCode).toBe(EXIT.OK);
    const idle = JSON.parse(first.stdout.trim());
    expect(idle.total.writesPerSecond).toBe(0);
    expect(idle.members.map((member: { path: string }) => member.path)).toEqual(members.map((path) => resolve(path)));

    const sampling = execa(JRAID_BIN, ['iostat', 'r5', '1', '3', '--json'], { reject: false, env });
    let written = 0;
    const stopAt = Date.now() + 2500;
    while (Date.now() < stopAt) {
      const chunk = randomBytes(MIB);
      expect((await ws.run(['write', 'r5', '--offset', String(written % (16 * MIB))], { env, input: chunk })).exitCode).toBe(EXIT.OK);
      written += chunk.length;
    }
    const result = await sampling;
    expect(result.exitCode, result.stderr).toBe(EXIT.OK);
    const reports = result.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(reports).toHaveLength(3);
    const busy = reports.slice(1).find((report) => report.total.writesPerSecond > 0);
    expect(busy, 'an interval with writes').toBeDefined();
    expect(busy.intervalSeconds).toBeGreaterThan(0.5);
    expect(busy.total.writeBytesPerSecond).toBeGreaterThan(0);
    expect(busy.total.writeLatencyMsMean).toBeGreaterThan(0);
    for (const member of busy.members) {
      expect(member.writesPerSecond).toBeGreaterThan(0);
      expect(member.writeBytesPerSecond).toBeGreaterThan(0);
    }
    expect(busy.journalRecordsPerSecond).toBeGreaterThan(0);
    // The array's bytes are what the clients wrote: the sum over intervals cannot exceed it.
    const arrayBytes = reports.slice(1).reduce((sum, report) => sum + report.total.writeBytesPerSecond * report.intervalSeconds, 0);
    expect(arrayBytes).toBeLessThanOrEqual(written * 1.01);
    const text = await ws.run(['iostat', 'r5'], { env });
    expect(text.stdout).toMatch(/writes\/s/);
    expect(text.stdout).toMatch(/journal: [\d.]+ records\/s/);
  });

  it('refuses without a daemon, for an unknown array, and for a bad interval', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    expect(errorLine(await ws.run(['iostat', 'r5'], { env })).code).toBe('E_DAEMON');
    expect(errorLine(await ws.run(['iostat', 'nosuch'], { env })).code).toBe('E_ARRAY_UNKNOWN');
    const bad = await ws.run(['iostat', 'r5', '0'], { env });
    expect(bad.exitCode).toBe(EXIT.USAGE);
    expect(errorLine(bad).code).toBe('E_USAGE');
  });
});
