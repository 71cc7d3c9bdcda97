// Proves: a member copied aside and put back after 8 MiB were written (with a clean stop, or
// after the daemon serving the array was killed) is named stale by detail and assemble (exit 3,
// degraded), is left out of reads (which return the newest data), and re-add brings it back.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

async function expectStale(spec: string, stalePath: string, payload: Buffer): Promise<void> {
  const detail = await ws.run(['detail', spec, '--json']);
  expect(detail.exitCode).toBe(EXIT.DEGRADED);
  const info = readJson(detail.stdout);
  expect(info.state).toBe('degraded');
  expect(info.members.find((member: { path: string | null }) => member.path === stalePath)).toMatchObject({ state: 'stale' });
  expect((await ws.run(['detail', spec])).stdout).toMatch(/stale/);
  const assemble = await ws.run(['assemble', '--json', ...spec.split(',')]);
  expect(assemble.exitCode).toBe(EXIT.DEGRADED);
  expect(readJson(assemble.stdout).stale).toEqual([stalePath]);
  const text = await ws.run(['assemble', ...spec.split(',')]);
  expect(text.stderr).toMatch(new RegExp(`${stalePath}: left out, stale: events \\d+ < \\d+`));
  const read = await ws.run(['read', spec, '-o', '0', '-l', String(payload.length), '--output', ws.path('back')]);
  expect(read.exitCode).toBe(EXIT.DEGRADED);
  expect(readFileSync(ws.path('back')).equals(payload)).toBe(true);
}

async function expectReAdded(spec: string, stalePath: string, payload: Buffer): Promise<void> {
  const reAdd = await ws.run(['re-add', spec, stalePath]);
  expect(reAdd.exitCode, reAdd.stderr).toBe(EXIT.OK);
  expect((await ws.run(['detail', spec])).exitCode).toBe(EXIT.OK);
  const read = await ws.run(['read', spec, '-o', '0', '-l', String(payload.length), '--output', ws.path('back')]);
  expect(read.exitCode).toBe(EXIT.OK);
  expect(readFileSync(ws.path('back')).equals(payload)).toBe(true);
  expect(readJson((await ws.run(['scrub', spec, '--json'])).stdout).mismatchCount).toBe(0);
}

for (const [level, count] of [[5, 4], [6, 5]] as const) {
  describe(`a rolled-back member of a RAID-${level}`, () => {
    async function setup(): Promise<{ members: string[]; spec: string; payload: Buffer }> {
      ws = workspace();
      const members = Array.from({ length: count }, (_, i) => ws.path(`m${i}.img`));
      expect((await ws.run(['create', '-l', String(level), '-n', String(count), '-c', '64K', '-z', '16M', ...members])).exitCode).toBe(EXIT.OK);
      writeFileSync(ws.path('old'), randomBytes(MIB));
      expect((await ws.run(['write', members.join(','), '-o', '0', '-i', ws.path('old')])).exitCode).toBe(EXIT.OK);
      const payload = randomBytes(8 * MIB);
      writeFileSync(ws.path('payload'), payload);
      return { members, spec: members.join(','), payload };
    }

    it('after a clean stop: named stale, left out of reads, re-added', async () => {
      const { members, spec, payload } = await setup();
      copyFileSync(members[1]!, ws.path('aside'));
      expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('payload')])).exitCode).toBe(EXIT.OK);
      copyFileSync(ws.path('aside'), members[1]!);
      await expectStale(spec, members[1]!, payload);
      await expectReAdded(spec, members[1]!, payload);
    });

    it('after the daemon serving it was killed: named stale too', async () => {
      const { members, spec, payload } = await setup();
      copyFileSync(members[2]!, ws.path('aside'));
      const daemon = await startDaemon(ws, spec);
      const env = daemonEnv(ws);
      expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('payload')], { env })).exitCode).toBe(EXIT.OK);
      process.kill(daemon.pid, 'SIGKILL');
      await waitForExit(daemon.pid);
      copyFileSync(ws.path('aside'), members[2]!);
      await expectStale(spec, members[2]!, payload);
      await expectReAdded(spec, members[2]!, payload);
    });
  });
}
