// Proves: mdadm's habits hold: --layout takes md's short names (ls, la, rs, ra), a bare
// --max-speed number is KiB/s as md's speed limits (a scrub at 4096 takes about two seconds per
// 8 MiB, neither 8 MiB/4096 bytes nor 4096 MiB/s), and the short options mdadm uses for
// something else (-r remove, -w readwrite) are not taken for --replacement and --with.
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, errorLine, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('mdadm habits', () => {
  it('--layout ls, la, rs, ra', async () => {
    ws = workspace();
    const names: Record<string, string> = { ls: 'left-symmetric', la: 'left-asymmetric', rs: 'right-symmetric', ra: 'right-asymmetric' };
    for (const [short, long] of Object.entries(names)) {
      const members = await makeImages(ws, [`${short}0`, `${short}1`, `${short}2`], 8 * MIB);
      const created = await ws.run(['create', '-l', '5', '-n', '3', '--layout', short, '--assume-clean', '--json', ...members]);
      expect(created.exitCode, created.stderr).toBe(EXIT.OK);
      expect(readJson(created.stdout).layout).toBe(long);
      expect(readJson((await ws.run(['detail', members.join(','), '--json'])).stdout).layout).toBe(long);
    }
    const members = await makeImages(ws, ['x0', 'x1', 'x2'], 8 * MIB);
    expect(errorLine(await ws.run(['create', '-l', '5', '-n', '3', '--layout', 'lx', ...members])).code).toBe('E_BAD_LAYOUT');
  });

  it('a bare --max-speed is KiB/s', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
    const scrub = await ws.run(['scrub', members.join(','), '--max-speed', '4096', '--json'], { timeoutMs: 60_000 });
    expect(scrub.exitCode).toBe(EXIT.OK);
    const { seconds } = readJson(scrub.stdout);
    expect(seconds).toBeGreaterThan(1.5);
    expect(seconds).toBeLessThan(15);
  });

  it('-r and -w keep their mdadm meanings free', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 8 * MIB);
    for (const args of [['rebuild', members.join(','), '-r', 'x.img'], ['replace', members.join(','), members[0]!, '-w', 'x.img']]) {
      const result = await ws.run(args);
      expect(result.exitCode).toBe(EXIT.USAGE);
      expect(errorLine(result).line).toMatch(/unknown option '-[rw]'/);
    }
  });
});
