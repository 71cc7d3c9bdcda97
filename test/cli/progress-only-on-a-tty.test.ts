// Proves: long work shows a progress line (percent, rate, ETA) on a terminal, and nothing of the
// kind when stderr is not a terminal or with --json / --quiet.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { EXIT, JRAID_BIN, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

/** Runs jraid under a pseudo-terminal (util-linux script), returning what the terminal showed. */
async function onTerminal(args: string[]): Promise<string> {
  const command = [JRAID_BIN, ...args].map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(' ');
  const result = await execa('script', ['-qec', command, '/dev/null'], { reject: false, env: { JRAID_CONFIG: ws.config } });
  return result.stdout;
}

describe('progress', () => {
  it('create and scrub draw percent, rate and ETA on a terminal only', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c', 'd'], 68 * MIB); // existing members: parity is computed
    const shown = await onTerminal(['create', '-l', '5', '-n', '4', ...members]);
    expect(shown).toMatch(/initialising parity \[[=> ]+\]\s+\d+\.\d%\s+[\d.]+ \w?i?B\/s\s+ETA \d+:\d\d/);
    expect(shown).toMatch(/100\.0%/);
    const scrub = await onTerminal(['scrub', members.join(',')]);
    expect(scrub).toMatch(/scrub \[[=> ]+\]\s+\d+\.\d%.*ETA/);
    // Not a terminal: no progress line, whether plain, --json or --quiet.
    for (const extra of [[], ['--json'], ['--quiet']]) {
      const result = await ws.run(['scrub', members.join(','), ...extra]);
      expect(result.exitCode).toBe(EXIT.OK);
      expect(result.stderr).not.toMatch(/ETA/);
    }
    const quietTerminal = await onTerminal(['scrub', members.join(','), '--quiet']);
    expect(quietTerminal).not.toMatch(/ETA/);
  });
});
