// Proves: a cluster node whose write to a member fails marks the member faulty and answers that
// write only once every running node has followed the mark (none reads the member's stale
// blocks any more): with another node stopped (SIGSTOP) the write fails after the bound, with
// an error naming the node that lags; once that node runs again it follows, and every node
// serves the degraded array with verified I/O; rebuilt onto a replacement, parity checks out.
import { afterEach, expect, it } from 'vitest';
import { execa } from 'execa';
import { statSync, truncateSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { MIB } from '../../src/units.js';
import { CLUSTER_FOLLOW_TIMEOUT_MS } from '../../src/daemon/cluster.js';
import { FAULTS_ENV } from '../../src/device/fault-spec.js';

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

function fio(uri: string, node: number, sizeBytes: number) {
  return execa('fio', [
    `--name=node${node}`, '--ioengine=nbd', `--uri=${uri}`, '--rw=write:8k', '--bs=4k', '--iodepth=4',
    `--offset=${node * 4096}`, `--size=${sizeBytes}`, '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0',
  ], { reject: false, cwd: ws.dir });
}

it.runIf(requireTool('fio'))('a write error on one node is answered only once every running node follows the faulty mark', async () => {
  ws = workspace();
  const members = ['m0', 'm1', 'm2', 'm3'].map((name) => ws.path(`${name}.img`));
  const created = await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(8 * MIB / 1024), '-N', 'cl', '--cluster-nodes', '3', '--save-config', ...members]);
  expect(created.exitCode, created.stderr).toBe(EXIT.OK);
  const nodes = [];
  for (const node of [0, 1, 2]) {
    // Node 1 alone sees m3 fail: its writes to it fail after its first few.
    const env = node === 1 ? { [FAULTS_ENV]: JSON.stringify([{ path: members[3], failWritesAfter: 20 }]) } : {};
    const daemon = await startDaemon(ws, 'cl', ['--cluster', '--node-id', String(node)], env);
    pids.push(daemon.pid);
    nodes.push(daemon);
  }
  // Node 2 hangs: it cannot follow.
  process.kill(nodes[2]!.pid, 'SIGSTOP');
  const startedMs = Date.now();
  const hung = await fio(nodes[1]!.nbd, 1, 2 * MIB);
  expect(hung.exitCode, 'the write that failed m3 is not answered as done').not.toBe(0);
  expect(Date.now() - startedMs).toBeGreaterThanOrEqual(CLUSTER_FOLLOW_TIMEOUT_MS);
  expect(daemonLog(ws)).toMatch(/m3\.img is marked faulty, but cluster node\(s\) 2 still had it in use after 10000 ms/);

  process.kill(nodes[2]!.pid, 'SIGCONT');
  for (let waitedMs = 0; waitedMs < 5000 && !/member\(s\) 3 now faulty.*\n(.*\n)*/.test(daemonLog(ws).split('serving as node 2')[1] ?? ''); waitedMs += 100) {
    await new Promise((done) => setTimeout(done, 100));
  }
  expect(daemonLog(ws).match(/adopted superblock events \d+ committed by another node; member\(s\) 3 now faulty/g)?.length, 'nodes 0 and 2 followed').toBe(2);
  // Every node serves degraded, with verified I/O, and parity stays consistent.
  for (const run of await Promise.all([0, 1, 2].map((node) => fio(nodes[node]!.nbd, node, 2 * MIB)))) expect(run.exitCode, run.stderr).toBe(0);
  // Rebuilt onto a replacement (through the CLI: node 0) with every node running, parity checks out.
  const spare = ws.path('spare.img');
  writeFileSync(spare, '');
  truncateSync(spare, statSync(members[0]!).size);
  const rebuilt = await ws.run(['rebuild', 'cl', '--replacement', spare], { env: daemonEnv(ws) });
  expect(rebuilt.exitCode, rebuilt.stderr).toBe(EXIT.OK);
  const scrub = readJson((await ws.run(['scrub', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
  expect(scrub.mismatchCount).toBe(0);
}, 120_000);
