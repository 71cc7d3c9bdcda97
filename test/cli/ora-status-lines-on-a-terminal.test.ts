// Proves: on a terminal (a pseudo-terminal from util-linux script), rebuild and recovery draw
// ora status lines: a spinner frame with the rebuild's bar, percent, rate and ETA, and recovery's
// spinner while it assembles; with --json, --quiet or a pipe nothing of the kind is drawn.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { EXIT, JRAID_BIN, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

/** ora's default spinner frames (dots). */
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;

async function onTerminal(args: string[], env: Record<string, string>): Promise<{ shown: string; exitCode: number }> {
  const command = [JRAID_BIN, ...args].map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(' ');
  // ora stays quiet under CI=true unless told otherwise; jraid tells it (a terminal is a terminal).
  const result = await execa('script', ['-qec', command, '/dev/null'], { reject: false, env: { ...env, CI: 'true', TERM: 'xterm' } });
  // Colours and cursor moves out, so the text reads as the terminal shows it.
  // eslint-disable-next-line no-control-regex
  return { shown: result.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''), exitCode: result.exitCode ?? -1 };
}

describe('ora status lines', () => {
  it('rebuild: spinner, bar, percent, rate and ETA on a terminal; nothing with --json, --quiet or a pipe', async () => {
    ws = workspace();
    const env = { JRAID_CONFIG: ws.config };
    const members = await makeImages(ws, ['a', 'b', 'c'], 36 * MIB);
    const spares = await makeImages(ws, ['r1', 'r2', 'r3', 'r4'], 36 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', '--assume-clean', ...members])).exitCode).toBe(EXIT.OK);
    const rebuildOnto = async (replacement: string, extra: string[], terminal: boolean) => {
      expect((await ws.run(['fail-disk', 'r5', (await currentRole1())!])).exitCode).toBe(EXIT.DEGRADED);
      const args = ['rebuild', 'r5', '--replacement', replacement, '--max-speed', '16M', ...extra];
      if (terminal) return onTerminal(args, env);
      const piped = await ws.run(args);
      return { shown: piped.stdout + piped.stderr, exitCode: piped.exitCode };
    };
    const currentRole1 = async () => JSON.parse((await ws.run(['detail', 'r5', '--json'])).stdout).members.find((m: { role: number | null; state: string }) => m.role === 1 && m.state === 'active')?.path as string | undefined;

    const shown = await rebuildOnto(spares[0]!, [], true);
    expect(shown.exitCode).toBe(EXIT.OK);
    expect(shown.shown).toMatch(new RegExp(`${SPINNER.source} rebuild \\[[=> ]+\\]\\s+\\d+\\.\\d%\\s+[\\d.]+ \\w?i?B/s\\s+ETA \\d+:\\d\\d`));
    expect(shown.shown).toMatch(/✔ rebuild \[=+>\]\s+100\.0%/);
    for (const [replacement, extra, terminal] of [[spares[1]!, ['--json'], true], [spares[2]!, ['--quiet'], true], [spares[3]!, [], false]] as const) {
      const quiet = await rebuildOnto(replacement, [...extra], terminal);
      expect(quiet.exitCode, quiet.shown).toBe(EXIT.OK);
      expect(quiet.shown).not.toMatch(SPINNER);
      expect(quiet.shown).not.toMatch(/ETA/);
    }
  });

  it('recovery: a spinner while the array is assembled and its journal read', async () => {
    ws = workspace();
    const env = daemonEnv(ws);
    const members = await makeImages(ws, ['a', 'b', 'c'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const daemon = await startDaemon(ws, 'r5', ['--idle-clean', '600000']);
    pids.push(daemon.pid);
    expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: Buffer.alloc(256 * 1024, 3) })).exitCode).toBe(EXIT.OK);
    process.kill(daemon.pid, 'SIGKILL');
    await waitForExit(daemon.pid);
    const json = await onTerminal(['recover', 'r5', '--json'], env);
    expect(json.shown).not.toMatch(SPINNER);
    expect(JSON.parse(json.shown.replace(/\r/g, '')).recovered).toBe(true);
    const daemon2 = await startDaemon(ws, 'r5', ['--idle-clean', '600000']);
    pids.push(daemon2.pid);
    expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: Buffer.alloc(256 * 1024, 4) })).exitCode).toBe(EXIT.OK);
    process.kill(daemon2.pid, 'SIGKILL');
    await waitForExit(daemon2.pid);
    const shown = await onTerminal(['recover', 'r5'], env);
    expect(shown.exitCode).toBe(EXIT.OK);
    expect(shown.shown).toMatch(new RegExp(`${SPINNER.source} recover: assembling r5 and reading its journal`));
    expect(shown.shown).toMatch(/recovered r5: resynced \d+ dirty stripe/);
  });
});
