// Proves: a primary that was only paused (SIGSTOP) does not write after the standby took over:
// the standby claims the silent primary's lease and serves; a write the paused primary received
// before it resumed fails (EIO or a dropped connection) and never reaches the members; the old
// primary logs that it was fenced and exits; the new primary's data and parity stay intact.
import { afterEach, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, errorLine, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon, waitForExit } from '../helpers/daemon.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';
import { NBD_CMD_WRITE } from '../../src/daemon/nbd-protocol.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) {
    if (!alive(pid)) continue;
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  }
  pids = [];
  ws?.cleanup();
});

it('SIGSTOP primary: the standby takes over and fences it; its late write fails and lands nowhere', async () => {
  ws = workspace();
  const members = ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '4', '-z', String((16 * MIB) / 1024), '-N', 'fz', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  const env = daemonEnv(ws);
  const primary = await startDaemon(ws, 'fz');
  pids.push(primary.pid);
  const standby = await startDaemon(ws, 'fz', ['--standby']);
  pids.push(standby.pid);

  const socketPath = primary.nbd.replace('nbd+unix:///?socket=', '');
  const client = await RawNbdClient.connect({ path: socketPath });
  await client.handshake();
  const offsetBytes = 5 * MIB;
  expect(await client.write(offsetBytes, Buffer.alloc(4096, 0x11))).toBe(0);

  process.kill(primary.pid, 'SIGSTOP');
  // Received by the paused primary's socket; it reads it only when it resumes.
  const late = Buffer.alloc(64 * 1024, 0xee);
  client.sendRequest({ type: NBD_CMD_WRITE, handle: 7n, offset: offsetBytes, lengthBytes: late.length, payload: late });

  // (Not through the CLI: the paused primary's control socket accepts and never answers.)
  for (const started = Date.now(); !/takeover: serving \d+ ms/.test(daemonLog(ws)); await new Promise((resolve) => setTimeout(resolve, 100))) {
    expect(Date.now() - started, 'the standby takes over a paused primary').toBeLessThan(30_000);
  }
  const after = readJson((await ws.run(['detail', 'fz', '--json'], { env })).stdout);
  expect(after.daemon.pid).toBe(standby.pid);
  expect(after.daemon.takeover).toMatchObject({ previousPid: primary.pid, paused: true });
  expect(daemonLog(ws)).toContain(`standby: primary pid ${primary.pid} has not renewed its lease`);

  // The new primary writes the same range; the old one resumes and must not overwrite it.
  const fresh = randomBytes(late.length);
  writeFileSync(ws.path('fresh.bin'), fresh);
  expect((await ws.run(['write', 'fz', '-o', String(offsetBytes), '-i', ws.path('fresh.bin')], { env })).exitCode).toBe(EXIT.OK);
  process.kill(primary.pid, 'SIGCONT');
  const reply = await client.readReply().catch(() => undefined); // undefined: the connection dropped
  expect(reply === undefined || reply.error !== 0, 'the fenced primary acknowledged a write').toBe(true);
  await waitForExit(primary.pid, 10_000);
  expect(daemonLog(ws)).toMatch(new RegExp(`fenced: (the lease names pid ${standby.pid}|.* has events \\d+, this daemon knows \\d+)`));
  // Once the fenced primary is gone, the new one holds the array lock: a second daemon is refused.
  for (const started = Date.now(); !daemonLog(ws).includes('takeover: the array lock is this daemon\'s now'); await new Promise((resolve) => setTimeout(resolve, 100))) {
    expect(Date.now() - started, 'the new primary takes the lock').toBeLessThan(10_000);
  }
  const second = await ws.run(['daemon', 'fz', '--nbd', `unix:${ws.path('other.nbd')}`, '--socket', ws.path('other.sock')], { env });
  expect(second.exitCode).toBe(EXIT.FAILED);
  expect(errorLine(second).code).toBe('E_ARRAY_LOCKED');

  expect((await ws.run(['read', 'fz', '-o', String(offsetBytes), '-l', String(late.length), '--output', ws.path('back.bin')], { env })).exitCode).toBe(EXIT.OK);
  expect(readFileSync(ws.path('back.bin')).equals(fresh), 'the fenced primary wrote after the takeover').toBe(true);
  const scrub = readJson((await ws.run(['scrub', 'fz', '--json'], { env })).stdout);
  expect(scrub.mismatchCount).toBe(0);
  // The new primary kept its sockets: the fenced one left them alone.
  expect((await ws.run(['detail', 'fz', '--json'], { env })).exitCode).toBe(EXIT.OK);
  const again = await RawNbdClient.connect({ path: socketPath });
  await again.handshake();
  const read = await again.read(offsetBytes, 4096);
  expect(read.error).toBe(0);
  expect(read.data.equals(fresh.subarray(0, 4096))).toBe(true);
  again.disconnect();
  expect((await ws.run(['stop', 'fz', '--all'], { env })).exitCode).toBe(EXIT.OK);
});
