// Proves: qemu's NBD client with reconnect-delay rides through a standby takeover: a pattern
// written before the primary is SIGKILLed reads back afterwards, and writes and verified reads
// go on against the standby, in one qemu-io session with no I/O error.
import { afterEach, expect, it } from 'vitest';
import { execa } from 'execa';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { MIB } from '../../src/units.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

it.runIf(requireTool('qemu-io'))('qemu-io with reconnect-delay keeps writing and verifying across a takeover', async () => {
  ws = workspace();
  const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', String((16 * MIB) / 1024), '-N', 'qr', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  const env = daemonEnv(ws);
  const primary = await startDaemon(ws, 'qr');
  pids.push(primary.pid);
  const standby = await startDaemon(ws, 'qr', ['--standby']);
  pids.push(standby.pid);
  const socketPath = primary.nbd.replace('nbd+unix:///?socket=', '');

  const session = execa('qemu-io', [
    '--image-opts', `driver=raw,file.driver=nbd,file.server.type=unix,file.server.path=${socketPath},file.reconnect-delay=30`,
    '-c', 'write -P 0xab 0 1M', '-c', 'flush', '-c', 'sleep 4000',
    '-c', 'read -P 0xab 0 1M', '-c', 'write -P 0xcd 1M 1M', '-c', 'read -P 0xcd 1M 1M', '-c', 'write -P 0xef 100K 8K', '-c', 'read -P 0xef 100K 8K', '-c', 'flush',
  ], { reject: false });
  // Once the first write is flushed (the primary's journal says so), kill it during qemu-io's sleep.
  // (qemu-io's output is buffered until it exits: the daemon's own count tells when it wrote.)
  const client = (await DaemonClient.connect({ controlSocket: primary.controlSocket, pid: primary.pid } as DaemonRecord))!;
  for (const started = Date.now(); (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites === 0;) {
    expect(Date.now() - started, 'the first write').toBeLessThan(20_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  client.close();
  await new Promise((resolve) => setTimeout(resolve, 500)); // the rest of the write and the flush, well inside the 4 s sleep
  process.kill(primary.pid, 'SIGKILL');
  const result = await session;
  expect(result.exitCode, result.stdout + result.stderr).toBe(0);
  expect(result.stdout + result.stderr).not.toMatch(/Pattern verification failed|error|failed/i);
  expect(result.stdout.match(/read \d+\/\d+ bytes/g)).toHaveLength(3);
  expect(daemonLog(ws)).toMatch(/takeover: serving \d+ ms after the primary/);
  const detail = readJson((await ws.run(['detail', 'qr', '--json'], { env })).stdout);
  expect(detail.daemon).toMatchObject({ pid: standby.pid, takeover: { previousPid: primary.pid } });
  expect((await ws.run(['stop', 'qr', '--all'], { env })).exitCode).toBe(EXIT.OK);
});
