// Proves: in a cluster, when a member fails and a spare is present, exactly one node (the one
// that takes the takeover lock) rebuilds onto the spare while every node keeps running and two
// of them write through fio; the others follow (write to the spare) before the copy starts, so
// every verify passes, scrub finds 0 mismatches and every node shows the spare active.
import { afterEach, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { statSync, truncateSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { MIB } from '../../src/units.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';

/** How long the automatic rebuild may take on a loaded machine. */
const TAKEOVER_WAIT_MS = 60_000;
let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

/** Random 4 KiB writes by node `node` to every other block from block `node` on: nodes 0 and 1 share every stripe. */
function fio(uri: string, node: number, sizeBytes: number, verifyOnly = false): ResultPromise<{ reject: false; cwd: string }> {
  return execa('fio', [
    `--name=node${node}`, '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--blockalign=8k', '--iodepth=32', `--randseed=${11 + node}`,
    `--offset=${node * 4096}`, `--size=${sizeBytes}`, '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', ...(verifyOnly ? ['--verify_only'] : []),
  ], { reject: false, cwd: ws.dir });
}

async function call<T>(node: { pid: number; controlSocket: string }, op: string, args: Record<string, unknown> = {}): Promise<T> {
  const client = (await DaemonClient.connect({ controlSocket: node.controlSocket, pid: node.pid } as DaemonRecord))!;
  try {
    return (await client.call<T>(op, args)).result;
  } finally {
    client.close();
  }
}

type Members = { members: { number: number; uuid: string; state: string; role: number | null }[] };

it.runIf(requireTool('fio'))('a spare takes over on one node while every node runs and two write', async () => {
  ws = workspace();
  const members = ['m0', 'm1', 'm2', 'm3'].map((name) => ws.path(`${name}.img`));
  const created = await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(16 * MIB / 1024), '-N', 'cl', '--cluster-nodes', '3', '--save-config', ...members]);
  expect(created.exitCode, created.stderr).toBe(EXIT.OK);
  const nodes: { pid: number; nbd: string; controlSocket: string }[] = [];
  for (const node of [0, 1, 2]) {
    const daemon = await startDaemon(ws, 'cl', ['--cluster', '--node-id', String(node)]);
    pids.push(daemon.pid);
    nodes.push(daemon);
  }
  const spare = ws.path('spare.img');
  writeFileSync(spare, '');
  truncateSync(spare, statSync(members[0]!).size);
  const added = await ws.run(['add', 'cl', spare], { env: daemonEnv(ws) });
  expect(added.exitCode, added.stderr).toBe(EXIT.OK);

  const writes = [0, 1].map((node) => fio(nodes[node]!.nbd, node, 8 * MIB));
  await new Promise((done) => setTimeout(done, 1500));
  await call(nodes[2]!, 'fail-disk', { member: members[1] });
  // Every node ends up showing the spare active in role 1, and nothing rebuilding.
  const startedMs = Date.now();
  const settled = async () => {
    for (const node of nodes) {
      const { members: view } = await call<Members>(node, 'detail');
      if (view.some((member) => member.state === 'rebuilding') || !view.some((member) => member.state === 'active' && member.role === 1)) return false;
    }
    return true;
  };
  while (!(await settled())) {
    expect(Date.now() - startedMs, 'the spare took over within the bound').toBeLessThan(TAKEOVER_WAIT_MS);
    await new Promise((done) => setTimeout(done, 200));
  }
  for (const run of await Promise.all(writes)) expect(run.exitCode, run.stderr).toBe(0);

  const log = daemonLog(ws);
  expect(log.match(/spare \S+spare\.img takes over lost role 1: rebuild started/g)?.length, 'exactly one node took over').toBe(1);
  expect(log).toMatch(/cluster: spare takeover: every running node followed/);
  for (const run of await Promise.all([0, 1].map((node) => fio(nodes[2]!.nbd, node, 8 * MIB, true)))) expect(run.exitCode, run.stderr).toBe(0);
  const scrub = readJson((await ws.run(['scrub', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
  expect(scrub.mismatchCount).toBe(0);
  const views = await Promise.all(nodes.map(async (node) => JSON.stringify((await call<Members>(node, 'detail')).members.map(({ number, uuid, state, role }) => ({ number, uuid, state, role })))));
  expect(views[1]).toBe(views[0]);
  expect(views[2]).toBe(views[0]);
}, 180_000);
