// Proves: replace copies an active member onto a new one while the old one stays active: during
// the copy the array is never degraded and writes reach both; afterwards the new member holds
// the role (the data reads back with another member failed), the old one is a spare. Bad input
// (unknown array, a member not in the array, onto itself, too small, another array's member)
// is one error line and nothing written.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EXIT, JRAID_BIN, errorLine, hashAll, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

describe('jraid replace', () => {
  it('through the daemon: never degraded during the copy, writes during it land on the new member', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 20 * MIB);
    const [fresh] = await makeImages(ws, ['new.img'], 20 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5');
    pids.push(daemon.pid);
    const data = randomBytes(16 * MIB);
    expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: data })).exitCode).toBe(EXIT.OK);
    // 16 MiB per member at 2 MiB/s: about eight seconds of copying to look at.
    const replacing = execa(JRAID_BIN, ['replace', 'r5', members[1]!, '--with', fresh!, '--max-speed', '2048', '--json'], { reject: false, env });
    let seenRunning = false;
    for (let i = 0; i < 200 && !seenRunning; i++) {
      const info = readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout);
      expect(info.state).not.toBe('degraded');
      expect(info.activeDevices).toBe(3);
      seenRunning = info.members.some((member: { path: string; state: string }) => member.path === fresh && member.state === 'spare');
      if (!seenRunning) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(seenRunning).toBe(true);
    // Past the first 1.5 MiB of each member after 1.5 s: this write lands where the copy has been, so
    // only the mirrored write can bring it to the new member.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const patch = randomBytes(3 * MIB);
    expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: patch })).exitCode).toBe(EXIT.OK);
    patch.copy(data, 0);
    expect(replacing.exitCode, 'the copy was still running after the write').toBeNull();
    const done = await replacing;
    expect(done.exitCode, done.stderr).toBe(EXIT.OK);
    expect(readJson(done.stdout)).toMatchObject({ role: 1, old: { state: 'spare' }, new: { state: 'active' }, degraded: false });
    const after = readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout);
    expect(after.members.find((member: { path: string }) => member.path === fresh)).toMatchObject({ role: 1, state: 'active' });
    expect(after.members.find((member: { path: string }) => member.path === members[1])).toMatchObject({ role: null, state: 'spare' });
    // Only the new member can supply role 1 now; fail another so every stripe needs it (the old
    // member is removed first, or the daemon would rebuild onto it as a spare).
    expect((await ws.run(['remove', 'r5', members[1]!], { env })).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['fail-disk', 'r5', members[0]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    expect((await ws.run(['read', 'r5', '--offset', '0', '--length', String(data.length), '--output', ws.path('out')], { env })).exitCode).toBe(EXIT.DEGRADED);
    expect(readFileSync(ws.path('out')).equals(data)).toBe(true);
  });

  it('refuses bad input with one error line and writes nothing', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 20 * MIB);
    const other = await makeImages(ws, ['o0.img', 'o1.img', 'o2.img'], 20 * MIB);
    const [small] = await makeImages(ws, ['small.img'], 8 * MIB);
    const [fresh] = await makeImages(ws, ['new.img'], 20 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', ...other])).exitCode).toBe(EXIT.OK);
    const all = [...members, ...other, small!, fresh!];
    const before = await hashAll(all);
    const cases: [string[], string][] = [
      [['replace', 'nosuch', members[1]!, '--with', fresh!], 'E_ARRAY_UNKNOWN'],
      [['replace', 'r5', fresh!, '--with', members[1]!], 'E_MEMBER_UNKNOWN'],
      [['replace', 'r5', members[1]!, '--with', members[1]!], 'E_REFUSED'],
      [['replace', 'r5', members[1]!, '--with', small!], 'E_MEMBER_TOO_SMALL'],
      [['replace', 'r5', members[1]!, '--with', other[0]!], 'E_MEMBER_FOREIGN'],
      [['replace', 'r5', members[1]!, '--with', members[2]!], 'E_MEMBER_DUPLICATE'],
    ];
    for (const [args, code] of cases) {
      const result = await ws.run(args);
      expect(result.exitCode, args.join(' ')).toBe(EXIT.FAILED);
      expect(errorLine(result).code, args.join(' ')).toBe(code);
    }
    expect(await hashAll(all)).toEqual(before);
  });
});
