// Proves: when a member of a served array fails and a spare is present, the daemon rebuilds
// onto the spare by itself (logged), the array ends clean and the data reads back intact; with
// no spare it logs that one is needed and the array stays degraded.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EXIT, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  for (const started = Date.now(); ;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('spare takeover in the daemon', () => {
  it('a failed member is rebuilt onto the spare without being asked', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 20 * MIB);
    const [spare] = await makeImages(ws, ['spare.img'], 20 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['add', 'r5', spare!])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5');
    pids.push(daemon.pid);
    const data = randomBytes(8 * MIB);
    expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: data })).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['fail-disk', 'r5', members[1]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    const detail = await until('the spare to become active', async () => {
      const info = readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout);
      return info.state === 'clean' ? info : undefined;
    });
    expect(detail.members.find((member: { path: string }) => member.path === spare)).toMatchObject({ role: 1, state: 'active' });
    expect(daemonLog(ws)).toMatch(/spare .*spare\.img takes over lost role 1: rebuild started/);
    expect(daemonLog(ws)).toMatch(/rebuild of role 1 onto .*spare\.img finished/);
    // Read with the rebuilt member in place of the failed one, and with another member failed too:
    // the rebuilt chunks are what the array serves.
    expect((await ws.run(['fail-disk', 'r5', members[0]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    expect((await ws.run(['read', 'r5', '--offset', '0', '--length', String(data.length), '--output', ws.path('out')], { env })).exitCode).toBe(EXIT.DEGRADED);
    expect(readFileSync(ws.path('out')).equals(data)).toBe(true);
  });

  it('without a spare the daemon says one is needed and the array stays degraded', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5');
    pids.push(daemon.pid);
    expect((await ws.run(['fail-disk', 'r5', members[2]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    await until('the daemon to log that no spare is present', async () => (/no spare present: add one with jraid add r5 PATH/.test(daemonLog(ws)) ? true : undefined));
    expect(readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout).state).toBe('degraded');
  });
});
