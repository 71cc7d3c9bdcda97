// Cluster mode (issue 14): aggregate 4 KiB random-write IOPS of 1, 2 and 3 nodes serving one
// RAID-5 array (4 x 260 MiB member files, 64 KiB chunks, toughness durable), each node driven
// by its own fio (nbd engine, QD32, random writes over the whole array: nodes meet on stripes as
// they would on a shared disk), and how much of a write's time goes to waiting for parity
// locks: each node's own count of lock wait (daemon status) beside fio's mean write latency.
// The reference for N nodes is one node on the same array in the same run. Needs fio.

import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MIB } from '../src/units.js';
import { DaemonClient } from '../src/daemon/control-client.js';
import type { DaemonRecord } from '../src/daemon/registry.js';
import type { Bench } from './measure.js';

const JRAID = resolve(import.meta.dirname, '../../bin/jraid');
const RUNTIME_S = Number(process.env.JRAID_BENCH_CLUSTER_SECONDS ?? 8);
const NODES_MAX = 3;

interface NodeRun {
  iops: number;
  writes: number;
  latencyMsMean: number;
  lockWaitMs: number;
}

interface ClusterStatus {
  cluster: { parityLocks: { acquired: number; contended: number; waitMs: number } | null } | null;
}

export const benchCluster: Bench = async (report) => {
  if ((await execa('which', ['fio'], { reject: false })).exitCode !== 0) {
    console.log('cluster: skipped (needs fio)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-cluster-'));
  const env = { ...process.env, JRAID_RUN_DIR: join(dir, 'run'), JRAID_CONFIG: join(dir, 'jraid.conf') };
  const pids: number[] = [];
  try {
    const members = ['a', 'b', 'c', 'd'].map((m) => join(dir, `${m}.img`));
    await execa(JRAID, ['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String((260 * MIB) / 1024), '-N', 'cb', '--cluster-nodes', String(NODES_MAX), '--save-config', '-q', ...members], { env });
    const runs = new Map<number, NodeRun[]>();
    for (let nodes = 1; nodes <= NODES_MAX; nodes++) {
      const started: { pid: number; nbd: string; controlSocket: string }[] = [];
      for (let node = 0; node < nodes; node++) {
        const ready = JSON.parse((await execa(JRAID, ['daemon', 'cb', '--json', '--cluster', '--node-id', String(node), '--toughness', 'durable'], { env })).stdout) as { pid: number; nbd: string[]; controlSocket: string };
        pids.push(ready.pid);
        started.push({ pid: ready.pid, nbd: ready.nbd[0]!, controlSocket: ready.controlSocket });
      }
      const waitMs = async (daemon: { pid: number; controlSocket: string }) => {
        const client = (await DaemonClient.connect({ controlSocket: daemon.controlSocket, pid: daemon.pid } as DaemonRecord))!;
        try {
          return (await client.call<ClusterStatus>('status')).result.cluster?.parityLocks?.waitMs ?? 0;
        } finally {
          client.close();
        }
      };
      const before = await Promise.all(started.map(waitMs));
      const results = await Promise.all(started.map((daemon, node) => execa('fio', [
        `--name=node${node}`, '--ioengine=nbd', `--uri=${daemon.nbd}`, '--rw=randwrite', '--bs=4k', '--iodepth=32', '--norandommap',
        `--randseed=${node + 1}`, '--time_based', `--runtime=${RUNTIME_S}`, '--ramp_time=1', '--output-format=json',
      ], { reject: false })));
      const after = await Promise.all(started.map(waitMs));
      runs.set(nodes, results.map((result, index) => {
        if (result.exitCode !== 0) throw new Error(`fio on node ${index} of ${nodes} failed: ${result.stderr}`);
        const job = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))).jobs[0];
        return { iops: job.write.iops, writes: job.write.total_ios, latencyMsMean: job.write.lat_ns.mean / 1e6, lockWaitMs: after[index]! - before[index]! };
      }));
      for (const daemon of started) process.kill(daemon.pid, 'SIGTERM');
      for (const daemon of started) while (alive(daemon.pid)) await new Promise((done) => setTimeout(done, 50));
    }
    const aggregate = (nodes: number) => runs.get(nodes)!.reduce((sum, run) => sum + run.iops, 0);
    for (let nodes = 2; nodes <= NODES_MAX; nodes++) {
      report({ id: `cluster-${nodes}-nodes-randwrite`, name: `cluster ${nodes} nodes 4K randwrite`, figure: aggregate(nodes), unit: 'IOPS', reference: { what: '1 node', figure: aggregate(1), unit: 'IOPS' } });
    }
    for (let nodes = 1; nodes <= NODES_MAX; nodes++) {
      const all = runs.get(nodes)!;
      // Lock wait is counted from the daemon's status over the whole fio run (ramp included): per write, against fio's mean write latency.
      const writes = all.reduce((sum, run) => sum + run.writes, 0);
      const waitPerWriteMs = all.reduce((sum, run) => sum + run.lockWaitMs, 0) / Math.max(1, writes);
      const latencyMs = all.reduce((sum, run) => sum + run.latencyMsMean * run.writes, 0) / Math.max(1, writes);
      report({ id: `cluster-${nodes}-nodes-lock-wait`, name: `cluster ${nodes} node${nodes > 1 ? 's' : ''} parity-lock wait`, figure: waitPerWriteMs, unit: 'ms/write', reference: { what: 'mean write latency', figure: latencyMs, unit: 'ms' } });
    }
  } finally {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
