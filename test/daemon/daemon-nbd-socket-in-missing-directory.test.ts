// Proves: a daemon asked to listen (NBD or control socket) in a directory that does not exist
// fails at once with ENOENT naming that directory, not libuv's misleading EACCES, and leaves
// nothing running.
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { daemonEnv } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

afterEach(() => ws?.cleanup());

describe('daemon sockets in a missing directory', () => {
  for (const [option, what] of [['--nbd', 'NBD'], ['--socket', 'control']] as const) {
    it(`${option} in a directory that does not exist: ENOENT naming the directory`, async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', String((8 * MIB) / 1024), '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const missingDir = ws.path('missing/dir');
      const value = option === '--nbd' ? `unix:${missingDir}/x.sock` : `${missingDir}/control.sock`;
      const started = await ws.run(['daemon', 'r5', option, value], { env });
      expect(started.exitCode).toBe(EXIT.FAILED);
      expect(started.stderr).toContain('ENOENT');
      expect(started.stderr).not.toContain('EACCES');
      expect(started.stderr).toContain(`directory ${missingDir} does not exist`);
      expect(started.stderr).toContain(what);
      expect(started.stderr).toMatch(/\[E_DAEMON\]\n$/);
      const json = await ws.run(['daemon', 'r5', option, value, '--foreground', '--json'], { env });
      expect(json.exitCode).toBe(EXIT.FAILED);
      expect(readJson(json.stdout).error).toMatchObject({ code: 'E_DAEMON', path: `${missingDir}/${option === '--nbd' ? 'x' : 'control'}.sock` });
      expect(readJson(json.stdout).error.message).toContain('ENOENT');
      // Nothing is left serving: the array opens directly.
      expect((await ws.run(['detail', 'r5', '--json'], { env })).exitCode).toBe(EXIT.OK);
    });
  }
});
