// Proves: jraid status lists every array from the config file and every array a daemon serves
// (also one the config file does not list), with the serving daemon, per-member error counts,
// the last scrub and an action line; exits 3 when one is degraded or left dirty by a crash, 0
// when all are well; an unknown array name is refused.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { EXIT, errorLine, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

describe('jraid status', () => {
  it('all arrays: served, degraded, unlisted; exit 3 while one is degraded, 0 once all are clean', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const a = await makeImages(ws, ['a0.img', 'a1.img', 'a2.img'], 12 * MIB);
    const b = await makeImages(ws, ['b0.img', 'b1.img', 'b2.img'], 12 * MIB);
    const c = await makeImages(ws, ['c0.img', 'c1.img', 'c2.img'], 12 * MIB);
    const [spare] = await makeImages(ws, ['spare.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'ra', '--save-config', ...a])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'rb', '--save-config', ...b])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'rc', ...c])).exitCode).toBe(EXIT.OK);
    // The run directory exists (a daemon made it, or systemd): a scrub without a daemon records its result there.
    mkdirSync(env.JRAID_RUN_DIR!, { recursive: true, mode: 0o700 });
    expect((await ws.run(['scrub', 'ra'], { env })).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['fail-disk', 'rb', b[1]!])).exitCode).toBe(EXIT.DEGRADED);
    const served = await startDaemon(ws, 'ra');
    pids.push(served.pid);
    const unlisted = await startDaemon(ws, c.join(','));
    pids.push(unlisted.pid);

    const result = await ws.run(['status', '--json'], { env });
    expect(result.exitCode).toBe(EXIT.DEGRADED);
    const arrays = readJson(result.stdout).arrays as any[];
    expect(arrays.map((array) => array.name).sort()).toEqual(['ra', 'rb', 'rc']);
    const ra = arrays.find((array) => array.name === 'ra');
    expect(ra).toMatchObject({ state: 'clean', level: 5, needsRecovery: false, action: null, daemon: { pid: served.pid }, lastScrub: { mismatches: 0 } });
    expect(ra.members.map((member: any) => [member.state, member.readErrorsCorrected, member.writeErrors, member.checksumErrors])).toEqual([['active', 0, 0, 0], ['active', 0, 0, 0], ['active', 0, 0, 0]]);
    const rb = arrays.find((array) => array.name === 'rb');
    expect(rb).toMatchObject({ state: 'degraded', daemon: null });
    expect(rb.action).toContain('jraid add rb');
    expect(rb.members.find((member: any) => member.state === 'faulty').writeErrors).toBeNull();
    expect(arrays.find((array) => array.name === 'rc').daemon.pid).toBe(unlisted.pid);

    const text = await ws.run(['status'], { env });
    expect(text.exitCode).toBe(EXIT.DEGRADED);
    expect(text.stdout).toMatch(/action: add a spare \(jraid add rb PATH\)/);
    expect(text.stdout).toMatch(new RegExp(`daemon: pid ${served.pid}, NBD nbd\\+unix`));

    expect((await ws.run(['add', 'rb', spare!])).exitCode).toBe(EXIT.DEGRADED);
    expect(readJson((await ws.run(['status', 'rb', '--json'], { env })).stdout).arrays[0].action).toBe('run jraid rebuild rb to rebuild onto the spare');
    expect((await ws.run(['rebuild', 'rb'])).exitCode).toBe(EXIT.OK);
    const healthy = await ws.run(['status'], { env });
    expect(healthy.exitCode).toBe(EXIT.OK);
    expect(healthy.stdout).not.toMatch(/action:/);
  });

  it('a daemon killed after writes leaves the array dirty: recovery is the action, exit 3', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const a = await makeImages(ws, ['a0.img', 'a1.img', 'a2.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'ra', '--save-config', ...a])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'ra', ['--idle-clean', '600000']);
    pids.push(daemon.pid);
    expect((await ws.run(['write', 'ra', '--offset', '0'], { env, input: Buffer.alloc(64 * 1024, 1) })).exitCode).toBe(EXIT.OK);
    process.kill(daemon.pid, 'SIGKILL');
    await waitForExit(daemon.pid);
    const result = await ws.run(['status', '--json'], { env });
    expect(result.exitCode).toBe(EXIT.DEGRADED);
    const [ra] = readJson(result.stdout).arrays;
    expect(ra).toMatchObject({ needsRecovery: true, daemon: null, journal: { clean: false } });
    expect(ra.action).toMatch(/^run jraid recover ra/);
  });

  it('an unknown array name is refused', async () => {
    ws = workspace();
    const result = await ws.run(['status', 'nosuch'], { env: daemonEnv(ws) });
    expect(result.exitCode).toBe(EXIT.FAILED);
    expect(errorLine(result).code).toBe('E_ARRAY_UNKNOWN');
  });
});
