// Proves seed 004's cluster mode: three daemons (nodes) serve one RAID-4, 5 or 6 array on the
// same member files, fio writes through each node's NBD export at QD32 with verify, each node
// its own 4 KiB blocks but interleaved so that every parity row is changed by all three nodes;
// every verify passes and scrub finds 0 mismatches. The negative control, the same run with the
// parity lock disabled (a test-only environment hook), leaves mismatched parity. A node
// SIGKILLed mid-run: the survivors resync the stripes its journal area lists while they keep
// serving, their clients see no error, and scrub finds 0 mismatches. Every node SIGKILLed (RAID-6):
// the first to restart recovers its own journal area at assembly and the others' as survivor.
import { afterEach, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon, waitForExit } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { MIB } from '../../src/units.js';
import { UNSAFE_NO_PARITY_LOCK_ENV } from '../../src/daemon/daemon.js';

const NODES = 3;
/** Three daemons and three fio runs per test: minutes on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 300_000;
let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

/** A cluster array with three data members (RAID-4 and RAID-5: 4 members, RAID-6: 5) of 64 KiB chunks, and three nodes serving it. */
async function startCluster(level: 4 | 5 | 6, env: Record<string, string> = {}): Promise<{ uris: string[]; pids: number[] }> {
  ws = workspace();
  const count = level === 6 ? 5 : 4;
  const members = Array.from({ length: count }, (_, index) => ws.path(`m${index}.img`));
  const created = await ws.run(['create', '-l', String(level), '-n', String(count), '-c', '64K', '-z', String((4 * MIB + 40 * MIB) / 1024), '-N', 'cl', '--cluster-nodes', String(NODES), '--save-config', ...members]);
  expect(created.exitCode, created.stderr).toBe(EXIT.OK);
  const uris: string[] = [];
  const started: number[] = [];
  for (let node = 0; node < NODES; node++) {
    const daemon = await startDaemon(ws, 'cl', ['--cluster', '--node-id', String(node)], env);
    pids.push(daemon.pid);
    started.push(daemon.pid);
    uris.push(daemon.nbd);
  }
  return { uris, pids: started };
}

/**
 * Node `node` writes every third 4 KiB block from block `node` on (fio's write:8k skips two
 * blocks after each): in a stripe of 3 x 16 blocks, row r holds blocks r, 16 + r and 32 + r,
 * one of each node, so all three change every parity row. Verified by reading back after.
 */
function fio(uri: string, node: number, sizeBytes: number): ResultPromise<{ reject: false; cwd: string }> {
  return execa('fio', [
    `--name=node${node}`, '--ioengine=nbd', `--uri=${uri}`, '--rw=write:8k', '--bs=4k', '--iodepth=32',
    `--offset=${node * 4096}`, `--size=${sizeBytes}`, '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--output-format=json',
  ], { reject: false, cwd: ws.dir });
}

async function stopAll(started: number[]): Promise<void> {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGTERM');
  for (const pid of started) await waitForExit(pid);
}

async function scrubMismatches(): Promise<number> {
  const scrub = await ws.run(['scrub', 'cl', '--json'], { env: daemonEnv(ws) });
  return readJson(scrub.stdout).mismatchCount as number;
}

describe.runIf(requireTool('fio'))('three cluster nodes on one array', () => {
  for (const level of [4, 5, 6] as const) {
    it(`RAID-${level}: fio verify passes through every node, and scrub finds 0 mismatches`, async () => {
      const { uris, pids: started } = await startCluster(level);
      const runs = await Promise.all(uris.map((uri, node) => fio(uri, node, 24 * MIB)));
      for (const run of runs) {
        expect(run.exitCode, run.stderr).toBe(0);
        expect(run.stderr).not.toMatch(/verify|bad/);
        const job = JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))).jobs[0];
        expect(job.error).toBe(0);
        expect(job.write.io_bytes).toBeGreaterThanOrEqual(8 * MIB);
        expect(job.read.io_bytes).toBe(job.write.io_bytes); // all of it read back and verified
      }
      // The nodes waited for each other's parity locks: the lock really was shared ground.
      const detail = readJson((await ws.run(['detail', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
      expect(detail.daemon.cluster.nodes.map((node: { running: boolean }) => node.running)).toEqual([true, true, true]);
      await stopAll(started);
      expect(await scrubMismatches()).toBe(0);
    }, TEST_TIMEOUT_MS);
  }

  it('negative control: the same run without parity locks leaves parity mismatched', async () => {
    const { uris, pids: started } = await startCluster(5, { [UNSAFE_NO_PARITY_LOCK_ENV]: '1' });
    expect(daemonLog(ws)).toContain('WITHOUT parity locks');
    const runs = await Promise.all(uris.map((uri, node) => fio(uri, node, 24 * MIB)));
    for (const run of runs) expect(run.exitCode, run.stderr).toBe(0); // each node's own data is intact...
    await stopAll(started);
    expect(await scrubMismatches()).toBeGreaterThan(0); // ...but the parity the nodes shared is not
  }, TEST_TIMEOUT_MS);

  it('a node SIGKILLed mid-run: the survivors resync its stripes, their clients see no error, scrub finds 0', async () => {
    const { uris, pids: started } = await startCluster(5);
    const runs = uris.map((uri, node) => fio(uri, node, 36 * MIB));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    process.kill(started[1]!, 'SIGKILL');
    const [first, killed, third] = await Promise.all(runs);
    expect(killed!.exitCode, 'fio saw its node die').not.toBe(0);
    for (const run of [first!, third!]) {
      expect(run.exitCode, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout.slice(run.stdout.indexOf('{'))).jobs[0].error).toBe(0);
    }
    const log = daemonLog(ws);
    const listed = /cluster: node 1 is not running and its journal \(generation \d+\) lists (\d+) stripe\(s\): resyncing them/.exec(log);
    expect(listed, log).not.toBeNull();
    expect(Number(listed![1])).toBeGreaterThan(0);
    expect(log).toContain(`cluster: node 1's ${listed![1]} stripe(s) resynced`);
    const detail = readJson((await ws.run(['detail', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
    const node1 = detail.daemon.cluster.nodes[1];
    expect(node1.running).toBe(false);
    expect(node1.journal.clean).toBe(true);
    await stopAll([started[0]!, started[2]!]);
    expect(await scrubMismatches()).toBe(0);
  }, TEST_TIMEOUT_MS);

  it('every node SIGKILLed mid-run: one node restarting recovers its own area at assembly and the others\' areas as survivor', async () => {
    const { uris, pids: started } = await startCluster(6);
    const runs = uris.map((uri, node) => fio(uri, node, 36 * MIB));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    for (const pid of started) process.kill(pid, 'SIGKILL');
    await Promise.all(runs);
    const restarted = await startDaemon(ws, 'cl', ['--cluster', '--node-id', '0']);
    pids.push(restarted.pid);
    expect(daemonLog(ws)).toMatch(/recovered from an unclean shutdown: resynced \d+ dirty stripe\(s\)/);
    for (let waited = 0; !/cluster: node 2's \d+ stripe\(s\) resynced/.test(daemonLog(ws)); waited += 100) {
      expect(waited, 'node 0 resyncs the dead nodes\' stripes').toBeLessThan(20_000);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(daemonLog(ws)).toMatch(/cluster: node 1's \d+ stripe\(s\) resynced/);
    const detail = readJson((await ws.run(['detail', 'cl', '--json'], { env: daemonEnv(ws) })).stdout);
    expect(detail.daemon.cluster.nodes.map((node: { journal: { clean: boolean } | null }) => node.journal?.clean ?? true)).toEqual([true, true, true]);
    await stopAll([restarted.pid]);
    expect(await scrubMismatches()).toBe(0);
  }, TEST_TIMEOUT_MS);
});
