// Proves: on a healthy cluster array, a node that meets a latent read error rebuilds the block
// from parity and rewrites it under the row's parity lock (another node's write to that row
// cannot land half before and half after the rebuild), and the data read back is right.
import { afterEach, expect, it } from 'vitest';
import { execa } from 'execa';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { BLOCK_SIZE_BYTES, MIB } from '../../src/units.js';
import { FAULTS_ENV } from '../../src/device/fault-spec.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';

/** Unreadable blocks at the start of member 0's data: the first chunk of stripe 0 (RAID-5, left-symmetric: data 0 is on role 0). */
const BAD_BLOCKS = 4;
let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

function fio(uri: string, verifyOnly: boolean) {
  return execa('fio', [
    '--name=blocks', '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=4k', '--iodepth=4', '--size=256k',
    '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', ...(verifyOnly ? ['--verify_only'] : []),
  ], { reject: false, cwd: ws.dir });
}

async function parityLocksTaken(node: { pid: number; controlSocket: string }): Promise<number> {
  const client = (await DaemonClient.connect({ controlSocket: node.controlSocket, pid: node.pid } as DaemonRecord))!;
  try {
    return (await client.call<{ cluster: { parityLocks: { acquired: number } } }>('status')).result.cluster.parityLocks.acquired;
  } finally {
    client.close();
  }
}

it.runIf(requireTool('fio'))('a latent read error on a healthy cluster array is repaired under the parity lock', async () => {
  ws = workspace();
  const members = ['m0', 'm1', 'm2', 'm3'].map((name) => ws.path(`${name}.img`));
  const created = await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(8 * MIB / 1024), '-N', 'cl', '--cluster-nodes', '2', '--save-config', ...members]);
  expect(created.exitCode, created.stderr).toBe(EXIT.OK);
  const dataOffsetBytes = readJson((await ws.run(['examine', members[0]!, '--json'])).stdout).examined[0].superblock.regions.find((region: { kind: string }) => region.kind === 'data').offsetBytes as number;
  const node0 = await startDaemon(ws, 'cl', ['--cluster', '--node-id', '0']);
  pids.push(node0.pid);
  // Node 1 alone reads member 0's first blocks with EIO (latent sector errors); node 0 writes them.
  const bad = Array.from({ length: BAD_BLOCKS }, (_, block) => [dataOffsetBytes + block * BLOCK_SIZE_BYTES, dataOffsetBytes + (block + 1) * BLOCK_SIZE_BYTES]);
  const node1 = await startDaemon(ws, 'cl', ['--cluster', '--node-id', '1'], { [FAULTS_ENV]: JSON.stringify([{ path: members[0], badReadRanges: bad }]) });
  pids.push(node1.pid);
  const written = await fio(node0.nbd, false);
  expect(written.exitCode, written.stderr).toBe(0);

  const before = await parityLocksTaken(node1);
  const read = await fio(node1.nbd, true);
  expect(read.exitCode, read.stderr).toBe(0);
  expect(daemonLog(ws).match(/read error on \S+m0\.img at member data byte \d+: rebuilt from parity and rewritten/g)?.length).toBe(BAD_BLOCKS);
  // Reads of a healthy array take no parity lock: these are the repairs'.
  expect(await parityLocksTaken(node1) - before).toBe(BAD_BLOCKS);
}, 120_000);
