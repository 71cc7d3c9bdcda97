// Proves: with three cluster nodes running, one node fails a member, adds a spare and rebuilds
// onto it, fails another and re-adds it, while fio writes (and then verifies) through the other
// two nodes' exports, then removes the first; every node follows each change (they find the new
// member themselves, and close the removed one), every verify passes, also when read back
// through the node that made the changes, scrub finds 0 mismatches, and detail through each
// node (one restarted, finding the new member the same way) shows the same members.
import { afterEach, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { statSync, truncateSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon, waitForExit } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { MIB } from '../../src/units.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';

/** Writes each writing node has served before a change starts: the change lands in the middle of fio's writes. */
const WRITES_UNDER_WAY = 200;
let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

/**
 * Random 4 KiB writes by node `node` to every other block from block `node` on (offsets
 * node x 4 KiB + k x 8 KiB): the two writing nodes share every stripe. `verifyOnly` reads the
 * same blocks back and checks them (through any node).
 */
function fio(uri: string, node: number, sizeBytes: number, verifyOnly = false): ResultPromise<{ reject: false; cwd: string }> {
  return execa('fio', [
    `--name=node${node}`, '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--blockalign=8k', '--iodepth=32', '--randseed=' + (7 + node),
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

it.runIf(requireTool('fio'))('fail-disk, add, rebuild, re-add and remove through one node while two others write: every node follows, verify and scrub pass', async () => {
  ws = workspace();
  const members = ['m0', 'm1', 'm2', 'm3'].map((name) => ws.path(`${name}.img`));
  const created = await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(16 * MIB / 1024), '-N', 'cl', '--cluster-nodes', '3', '--save-config', ...members]);
  expect(created.exitCode, created.stderr).toBe(EXIT.OK);
  const spare = ws.path('spare.img');
  writeFileSync(spare, '');
  truncateSync(spare, statSync(members[0]!).size);
  const nodes: { pid: number; nbd: string; controlSocket: string }[] = [];
  for (const node of [0, 1, 2]) {
    const daemon = await startDaemon(ws, 'cl', ['--cluster', '--node-id', String(node)]);
    pids.push(daemon.pid);
    nodes.push(daemon);
  }
  const env = { env: daemonEnv(ws) };
  /** Resolves once nodes 0 and 1 each served WRITES_UNDER_WAY more writes (fio is under way on both). */
  const writing = async () => {
    const count = async (node: number) => (await call<{ nbdWrites: number }>(nodes[node]!, 'status')).nbdWrites;
    const before = [await count(0), await count(1)];
    for (let waitedMs = 0; waitedMs < 60_000; waitedMs += 50) {
      if ((await count(0)) >= before[0]! + WRITES_UNDER_WAY && (await count(1)) >= before[1]! + WRITES_UNDER_WAY) return;
      await new Promise((done) => setTimeout(done, 50));
    }
    throw new Error('fio did not get under way');
  };
  // The changes go through node 2 (the CLI's door is node 0: ask node 2's socket directly).
  const change = (op: string, args: Record<string, unknown>) => call<Record<string, unknown>>(nodes[2]!, op, args);

  // Round 1: fail-disk and add while nodes 0 and 1 write.
  const round1 = [0, 1].map((node) => fio(nodes[node]!.nbd, node, 4 * MIB));
  await writing();
  await change('fail-disk', { member: members[1] });
  const added = await change('add', { path: spare });
  expect(added.state).toBe('spare');
  for (const run of await Promise.all(round1)) expect(run.exitCode, run.stderr).toBe(0);

  // Round 2: the rebuild onto the spare starts while nodes 0 and 1 write; their writes after it
  // must reach the spare too, or it is stale where they wrote.
  const round2 = [0, 1].map((node) => fio(nodes[node]!.nbd, node, 8 * MIB));
  await writing();
  const rebuilt = await change('rebuild', {}) as { rebuilt: { path: string }[]; arrayState: string };
  expect(rebuilt.rebuilt.map((outcome) => outcome.path)).toEqual([spare]);
  for (const run of await Promise.all(round2)) expect(run.exitCode, run.stderr).toBe(0);

  // Round 3: another member fails and comes back (re-add, in full: each node tracks only its own
  // writes) while nodes 0 and 1 write; then the first failed member is removed.
  const round3 = [0, 1].map((node) => fio(nodes[node]!.nbd, node, 8 * MIB));
  await writing();
  await change('fail-disk', { member: members[2] });
  const readded = await change('re-add', { member: members[2] }) as { mode: string };
  expect(readded.mode).toBe('full');
  for (const run of await Promise.all(round3)) expect(run.exitCode, run.stderr).toBe(0);
  const removed = await change('remove', { member: members[1] }) as { removed: { number: number }[] };
  expect(removed.removed.map((member) => member.number)).toEqual([1]);

  // remove returned once no node held the member's locks; a node logs its close just after
  // (closing a member also ends its I/O thread), so the log is given a moment to catch up.
  const closedLines = () => daemonLog(ws).match(/m1\.img left the array \(another node removed it\): closed/g)?.length ?? 0;
  for (let waitedMs = 0; closedLines() < 2 && waitedMs < 5000; waitedMs += 100) await new Promise((done) => setTimeout(done, 100));
  const log = daemonLog(ws);
  expect(closedLines(), 'nodes 0 and 1 closed the removed member').toBe(2);
  expect(log).toMatch(/cluster: re-add: every running node followed/);
  expect(log).toMatch(/cluster: remove: every running node followed/);
  expect(log.match(/brought in by another node: found at .*spare\.img and opened/g)?.length, 'nodes 0 and 1 found the spare').toBe(2);
  expect(log).toMatch(/cluster: add: every running node followed/);
  expect(log).toMatch(/cluster: rebuild: every running node followed/);
  // Read back through the node that made the changes (it reads the rebuilt member directly now).
  for (const run of await Promise.all([0, 1].map((node) => fio(nodes[2]!.nbd, node, 8 * MIB, true)))) expect(run.exitCode, run.stderr).toBe(0);
  const scrub = readJson((await ws.run(['scrub', 'cl', '--json'], env)).stdout);
  expect(scrub.mismatchCount).toBe(0);
  // Node 0 restarts, named by the members it knew at first (without the spare, and without m1,
  // removed): it finds the spare as it found it while running.
  process.kill(nodes[0]!.pid, 'SIGTERM');
  await waitForExit(nodes[0]!.pid);
  nodes[0] = await startDaemon(ws, [members[0], members[2], members[3]].join(','), ['--cluster', '--node-id', '0']);
  pids.push(nodes[0].pid);
  expect(daemonLog(ws).split('serving as node 0').length, 'node 0 started twice').toBe(3);
  // Every node shows the same members, in the same states.
  await new Promise((done) => setTimeout(done, 500)); // the last commit is followed within 200 ms
  const views = [];
  for (const node of nodes) {
    const detail = await call<{ members: { number: number; uuid: string; state: string; role: number | null }[]; state: string }>(node, 'detail');
    views.push(JSON.stringify(detail.members.map(({ number, uuid, state, role }) => ({ number, uuid, state, role }))));
    expect(detail.state).toMatch(/clean|active/);
  }
  expect(views[1]).toBe(views[0]);
  expect(views[2]).toBe(views[0]);
  expect(views[0]).toMatch(/"state":"active","role":1/);
  expect(views[0]).not.toMatch(/"number":1,/);
}, 180_000);
