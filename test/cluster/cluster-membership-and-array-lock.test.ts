// Proves: cluster nodes share the array lock with each other and with nobody else (a writer or
// a reader that is no node is refused while nodes run, and a node is refused while such a
// daemon runs); status shows every node; fail-disk through one node returns only once every running node has followed
// the faulty mark (no node writes to the member after it), the others keep serving degraded
// with verified I/O, and replace is refused while other nodes run.
import { afterEach, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { EXIT, readJson, sha256, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon, waitForExit } from '../helpers/daemon.js';
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

async function makeArray(): Promise<string[]> {
  ws = workspace();
  const members = ['m0', 'm1', 'm2', 'm3'].map((name) => ws.path(`${name}.img`));
  const created = await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(24 * MIB / 1024), '-N', 'cl', '--cluster-nodes', '3', '--save-config', ...members]);
  expect(created.exitCode, created.stderr).toBe(EXIT.OK);
  return members;
}

it('nodes exclude writers and readers that are no node, and a node is refused beside a plain daemon', async () => {
  const members = await makeArray();
  const plain = await startDaemon(ws, 'cl');
  pids.push(plain.pid);
  const refused = await execa(join(import.meta.dirname, '../../bin/jraid'), ['daemon', 'cl', '--cluster', '--node-id', '1', '--json'], { reject: false, env: daemonEnv(ws) });
  expect(refused.exitCode).not.toBe(0);
  expect(refused.stdout + refused.stderr).toMatch(/E_ARRAY_LOCKED/);
  process.kill(plain.pid, 'SIGTERM');
  await waitForExit(plain.pid);

  const [node0, node1] = [(await startDaemon(ws, 'cl', ['--cluster', '--node-id', '0'])).pid, (await startDaemon(ws, 'cl', ['--cluster', '--node-id', '1'])).pid];
  pids.push(node0, node1);
  // Another run directory: the CLI finds no daemon to go through, and opens the members itself.
  const elsewhere = { JRAID_RUN_DIR: ws.path('elsewhere'), JRAID_CONFIG: ws.config };
  mkdirSync(elsewhere.JRAID_RUN_DIR);
  const writer = await ws.run(['write', 'cl', '-o', '0', '--input', members[0]!.replace(/m0\.img$/, 'jraid.conf')], { env: elsewhere });
  expect(writer.stderr).toMatch(/E_ARRAY_LOCKED/);
  const reader = await ws.run(['scrub', 'cl'], { env: elsewhere });
  expect(reader.stderr).toMatch(/served by cluster nodes.*E_ARRAY_LOCKED/);
  const plainAgain = await execa(join(import.meta.dirname, '../../bin/jraid'), ['daemon', 'cl', '--json'], { reject: false, env: elsewhere });
  expect(plainAgain.stdout + plainAgain.stderr).toMatch(/E_ARRAY_LOCKED/);
  // The node that is the CLI's door answers for the array.
  const detail = readJson((await ws.run(['detail', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
  expect(detail.daemon.cluster.nodes.map((node: { running: boolean }) => node.running)).toEqual([true, true, false]);
  // status shows every node, each with its own pid and export.
  const status = readJson((await ws.run(['status', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
  expect(status.arrays[0].nodes.map((node: { node: number; running: boolean; pid: number | null }) => [node.node, node.running, node.pid])).toEqual([[0, true, node0], [1, true, node1], [2, false, null]]);
  const statusText = (await ws.run(['status', 'cl'], { env: daemonEnv(ws) })).stdout;
  expect(statusText).toMatch(new RegExp(`node 1: running, pid ${node1}, NBD \\S+cl\\.node1\\.nbd; no journal record`));
  // stop --node-id stops that node; --all stops every node left.
  expect((await ws.run(['stop', 'cl', '--node-id', '1'], { env: daemonEnv(ws) })).exitCode).toBe(EXIT.OK);
  expect(alive(node1!)).toBe(false);
  expect(alive(node0!)).toBe(true);
  pids.push((await startDaemon(ws, 'cl', ['--cluster', '--node-id', '2'])).pid);
  const all = readJson((await ws.run(['stop', 'cl', '--all', '--json'], { env: daemonEnv(ws) })).stdout);
  expect(all.nodesStopped).toHaveLength(2);
  expect(pids.filter(alive)).toEqual([]);
}, 300_000);

it.runIf(requireTool('fio'))('fail-disk through one node: every node follows before it returns, and serves degraded', async () => {
  const members = await makeArray();
  const nodes: { pid: number; nbd: string; controlSocket: string }[] = [];
  for (const node of [0, 1, 2]) {
    const daemon = await startDaemon(ws, 'cl', ['--cluster', '--node-id', String(node)]);
    pids.push(daemon.pid);
    nodes.push(daemon);
  }
  const fio = (node: number, size: string) => execa('fio', [
    `--name=node${node}`, '--ioengine=nbd', `--uri=${nodes[node]!.nbd}`, '--rw=write:8k', '--bs=4k', '--iodepth=32',
    `--offset=${node * 4096}`, `--size=${size}`, '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0',
  ], { reject: false, cwd: ws.dir });
  // Every node writes first (each commits its session's superblocks under the superblock lock).
  for (const run of await Promise.all([0, 1, 2].map((node) => fio(node, '3M')))) expect(run.exitCode, run.stderr).toBe(0);

  const failed = await ws.run(['fail-disk', 'cl', members[1]!], { env: daemonEnv(ws) });
  expect(failed.exitCode, failed.stderr).not.toBe(EXIT.FAILED);
  const frozen = await sha256(members[1]!);
  const log = daemonLog(ws);
  expect(log).toMatch(/every running node followed member 1's faulty mark/);
  expect(log.match(/adopted superblock events \d+ committed by another node; member\(s\) 1 now faulty/g)?.length).toBe(2);
  for (const node of nodes) {
    const client = (await DaemonClient.connect({ controlSocket: node.controlSocket, pid: node.pid } as DaemonRecord))!;
    expect((await client.call<{ state: string }>('status')).result.state).toBe('degraded');
    client.close();
  }
  // Every node keeps serving, degraded: writes skip the failed member, verified reads rebuild it.
  for (const run of await Promise.all([0, 1, 2].map((node) => fio(node, '6M')))) expect(run.exitCode, run.stderr).toBe(0);
  expect(await sha256(members[1]!), 'no node wrote to the failed member').toBe(frozen);

  // replace mirrors the old member's writes in its own process only: refused while other nodes run.
  const replace = await ws.run(['replace', 'cl', members[0]!, '--with', ws.path('spare.img')], { env: daemonEnv(ws) });
  expect(replace.stderr).toMatch(/replace in a cluster needs the other nodes stopped: node 1 runs.*E_REFUSED/);
}, 300_000);
