// Proves: a standby is refused, with one clear error and nothing left registered, when it names
// other member paths than its primary (a copy of the members), another array on the primary's
// addresses, or an array that already has a standby.
import { afterEach, expect, it } from 'vitest';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, errorLine, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

it('refuses other member paths, another array on the same socket, and a second standby', async () => {
  ws = workspace();
  const env = daemonEnv(ws);
  const sizeKib = String((8 * MIB) / 1024);
  const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', sizeKib, ...members])).exitCode).toBe(EXIT.OK);
  const others = ['x', 'y', 'z'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', sizeKib, ...others])).exitCode).toBe(EXIT.OK);
  // Copies carry the same array uuid: served by a standby they would be a second, diverging array.
  const copies = members.map((path) => path.replace('.img', '-copy.img'));
  members.forEach((path, index) => copyFileSync(path, copies[index]!));

  const primary = await startDaemon(ws, members.join(','));
  pids.push(primary.pid);
  const registered = () => readdirSync(join(ws.dir, 'run')).filter((name) => name.endsWith('.standby.json'));

  const copied = await ws.run(['daemon', copies.join(','), '--standby'], { env });
  expect(copied.exitCode).toBe(EXIT.FAILED);
  expect(errorLine(copied).code).toBe('E_REFUSED');
  expect(copied.stderr).toContain(`daemon ${primary.pid} serves array`);
  expect(copied.stderr).toContain(copies[0]);

  const other = await ws.run(['daemon', others.join(','), '--standby', '--socket', primary.controlSocket], { env });
  expect(other.exitCode).toBe(EXIT.FAILED);
  expect(errorLine(other).code).toBe('E_REFUSED');
  expect(other.stderr).toMatch(/serves another array/);
  expect(registered()).toEqual([]);

  const standby = await startDaemon(ws, members.join(','), ['--standby']);
  pids.push(standby.pid);
  const twice = await ws.run(['daemon', members.join(','), '--standby'], { env });
  expect(twice.exitCode).toBe(EXIT.FAILED);
  expect(errorLine(twice).code).toBe('E_REFUSED');
  expect(twice.stderr).toContain(`already has a standby daemon (pid ${standby.pid})`);
  expect(registered()).toHaveLength(1);

  // The refusals touched nothing: the primary still serves, with its one standby.
  const detail = readJson((await ws.run(['detail', members.join(','), '--json'], { env })).stdout);
  expect(detail.daemon).toMatchObject({ pid: primary.pid, standby: { pid: standby.pid } });
  expect((await ws.run(['stop', members.join(','), '--all'], { env })).exitCode).toBe(EXIT.OK);
});
