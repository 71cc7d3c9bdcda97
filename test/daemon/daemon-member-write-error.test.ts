// Proves: through the daemon, a member whose writes fail is marked faulty, the client's write
// completes degraded (exit 3) instead of hanging, the failure is logged at error level, the
// daemon keeps serving reads and writes, and `jraid stop` and SIGTERM still shut it down cleanly.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

/** A CLI call that must answer: a hang fails the test instead of stalling it. */
const ANSWER_TIMEOUT_MS = 20_000;

const cases = [
  { level: 5, raidDevices: 3, role: 1, plan: { writeErrorRate: 1 }, stop: 'jraid stop' },
  { level: 6, raidDevices: 4, role: 2, plan: { failWritesAfter: 2 }, stop: 'SIGTERM' },
  { level: 6, raidDevices: 4, role: 3, plan: { writeErrorRate: 1 }, stop: 'jraid stop' },
] as const;

describe('a member write error through the daemon', () => {
  for (const c of cases) {
    it(`RAID-${c.level} member ${c.role} (${JSON.stringify(c.plan)}), then ${c.stop}`, async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = Array.from({ length: c.raidDevices }, (_, i) => ws.path(`m${i}.img`));
      expect((await ws.run(['create', '-l', String(c.level), '-n', String(c.raidDevices), '-c', '16K', '-z', '12M', '-N', 'faulty', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const faults = { JRAID_FAULTS: JSON.stringify([{ path: members[c.role], ...c.plan }]) };
      const daemon = await startDaemon(ws, 'faulty', ['--log', ws.path('daemon.log')], faults);
      pids.push(daemon.pid);

      const first = randomBytes(256 * 1024 + 5);
      writeFileSync(ws.path('first'), first);
      const write = await runWithin(['write', 'faulty', '-o', '4095', '-i', ws.path('first')], env);
      expect(write.exitCode, write.stderr).toBe(EXIT.DEGRADED);
      expect(write.stdout).toContain('(array degraded)');
      expect(write.stderr).toContain(`${members[c.role]} is faulty`);

      // The daemon keeps serving: another write, and both read back.
      const second = randomBytes(64 * 1024);
      writeFileSync(ws.path('second'), second);
      expect((await runWithin(['write', 'faulty', '-o', String(MIB), '-i', ws.path('second')], env)).exitCode).toBe(EXIT.DEGRADED);
      expect((await runWithin(['read', 'faulty', '-o', '4095', '-l', String(first.length), '--output', ws.path('back1')], env)).exitCode).toBe(EXIT.DEGRADED);
      expect(readFileSync(ws.path('back1')).equals(first)).toBe(true);
      expect((await runWithin(['read', 'faulty', '-o', String(MIB), '-l', String(second.length), '--output', ws.path('back2')], env)).exitCode).toBe(EXIT.DEGRADED);
      expect(readFileSync(ws.path('back2')).equals(second)).toBe(true);
      const served = readJson((await runWithin(['detail', 'faulty', '--json'], env)).stdout);
      expect(served.members[c.role]).toMatchObject({ state: 'faulty' });
      expect(served.state).toBe('degraded');

      if (c.stop === 'jraid stop') {
        expect((await runWithin(['stop', 'faulty'], env)).exitCode).toBe(EXIT.OK);
      } else {
        process.kill(daemon.pid, 'SIGTERM');
      }
      await waitForExit(daemon.pid, ANSWER_TIMEOUT_MS);

      const log = readFileSync(ws.path('daemon.log'), 'utf8');
      expect(log).toMatch(new RegExp(` error member ${escape(members[c.role]!)} \\(role ${c.role}\\) failed: .*write.*; the array runs degraded`));
      expect(log).toMatch(/ info  array faulty closed cleanly/);
      const after = readJson((await ws.run(['detail', 'faulty', '--json'], { env })).stdout);
      expect(after.members[c.role]).toMatchObject({ state: 'faulty' });
      expect(after.journal).toMatchObject({ clean: true, dirtyStripes: [] });
      expect((await ws.run(['read', 'faulty', '-o', '4095', '-l', String(first.length), '--output', ws.path('back3')], { env })).exitCode).toBe(EXIT.DEGRADED);
      expect(readFileSync(ws.path('back3')).equals(first)).toBe(true);
    });
  }
});

async function runWithin(args: string[], env: Record<string, string>) {
  const result = await Promise.race([
    ws.run(args, { env }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`jraid ${args.join(' ')} did not answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS).unref()),
  ]);
  return result;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
