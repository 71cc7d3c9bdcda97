// Proves: with a primary and a standby, fio random writes at toughness durable, and the primary
// SIGKILLed at a random moment, the standby takes over on the same NBD address: every write
// the primary acknowledged reads back, no block holds anything but an old or a new pattern, and
// scrub finds 0 mismatches; repeated for JRAID_TAKEOVER_ROUNDS seeds (default 3), each round's
// standby becoming the next round's primary, on image files and on loop devices.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { loopSuiteEnabled, makeLoopDevices } from '../helpers/loop.js';
import { RawNbdClient } from '../helpers/nbd-raw-client.js';
import { requireTool } from '../helpers/tools.js';
import { Rng } from '../../src/rng.js';
import { MIB } from '../../src/units.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';

const ROUNDS = Number(process.env.JRAID_TAKEOVER_ROUNDS ?? 3);
const MEMBER_BYTES = 24 * MIB;
const REGION_BYTES = 16 * MIB; // two fio jobs of 8 MiB
const BLOCK_BYTES = 4096;

let ws: Workspace;
let pids: number[] = [];
const figures: Record<string, { takeoverMs: number[]; killToServedMs: number[] }> = {};

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

afterAll(() => {
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  for (const [kind, { takeoverMs, killToServedMs }] of Object.entries(figures)) {
    if (takeoverMs.length === 0) continue;
    console.log(`takeover on ${kind}, ${takeoverMs.length} rounds: lock free to serving median ${median(takeoverMs)} ms max ${Math.max(...takeoverMs)} ms; kill to first served read median ${median(killToServedMs)} ms max ${Math.max(...killToServedMs)} ms`);
  }
});

function fioArgs(uri: string, seed: number, extra: string[]): string[] {
  return [
    '--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', `--bs=${BLOCK_BYTES}`, '--iodepth=16', '--numjobs=2',
    `--size=${REGION_BYTES / 2}`, `--offset_increment=${REGION_BYTES / 2}`, `--randseed=${seed}`, '--verify=pattern', '--do_verify=0', '--verify_state_save=0',
    '--group_reporting', '--output-format=json', ...extra,
  ];
}

/** The block fio writes at `offsetBytes` with verify_pattern=0xTAG%o: the tag and the offset (u64 LE), repeated. */
function fioBlock(tag: number, offsetBytes: number): Buffer {
  const unit = Buffer.alloc(12);
  unit.writeUInt32LE(tag, 0);
  unit.writeBigUInt64LE(BigInt(offsetBytes), 4);
  const block = Buffer.alloc(BLOCK_BYTES);
  for (let at = 0; at < block.length; at += unit.length) unit.copy(block, at, 0, Math.min(unit.length, block.length - at));
  return block;
}

/** Offsets of the writes fio logged as completed (acknowledged by the server). */
function acknowledgedWrites(prefix: string): Set<number> {
  const offsets = new Set<number>();
  for (const name of readdirSync(ws.dir).filter((file) => file.startsWith(`${prefix}_lat.`) && file.endsWith('.log'))) {
    for (const line of readFileSync(join(ws.dir, name), 'utf8').split('\n').filter(Boolean)) {
      const [, , direction, , offsetBytes] = line.split(',').map((field) => Number(field.trim()));
      if (direction === 1) offsets.add(offsetBytes!);
    }
    rmSync(join(ws.dir, name));
  }
  return offsets;
}

/** Milliseconds from now until a fresh NBD client at `socketPath` completes a read. */
async function untilServed(socketPath: string, startedMs: number): Promise<number> {
  for (;;) {
    expect(performance.now() - startedMs, 'the standby serves').toBeLessThan(60_000);
    const client = await RawNbdClient.connect({ path: socketPath }).catch(() => undefined);
    if (client) {
      try {
        await client.handshake();
        if ((await client.read(0, BLOCK_BYTES)).error === 0) return performance.now() - startedMs;
      } catch {
        // the old primary's socket file, or the standby still starting
      } finally {
        client.destroy();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function takeoverRounds(kind: string, members: string[]): Promise<void> {
  const env = daemonEnv(ws);
  expect((await ws.run(['create', '-l', '5', '-n', String(members.length), '-c', '64K', '-z', String(MEMBER_BYTES / 1024), '-N', 'tk', '--save-config', '--force', ...members])).exitCode).toBe(EXIT.OK);
  let primary = await startDaemon(ws, 'tk', ['--toughness', 'durable']);
  pids.push(primary.pid);
  const socketPath = primary.nbd.replace('nbd+unix:///?socket=', '');
  const first = await execa('fio', fioArgs(primary.nbd, 1, ['--verify_pattern=0xa0a0a0a0%o', '--end_fsync=1']), { reject: false });
  expect(first.exitCode, first.stderr).toBe(0);
  // What each block holds: fio's pattern 0xa0a0a0a0 everywhere, then each round's where it landed.
  const tags = new Uint32Array(REGION_BYTES / BLOCK_BYTES).fill(0xa0a0a0a0);
  figures[kind] = { takeoverMs: [], killToServedMs: [] };

  for (let round = 1; round <= ROUNDS; round++) {
    const seed = 1000 * round + members.length;
    const rng = new Rng(seed);
    const tag = ((0xb0 + round) * 0x01010101) >>> 0; // one byte repeated: fio's byte order does not matter
    const standby = await startDaemon(ws, 'tk', ['--toughness', 'durable', '--standby']);
    pids.push(standby.pid);
    const client = (await DaemonClient.connect({ controlSocket: primary.controlSocket, pid: primary.pid } as DaemonRecord))!;
    const writesBefore = (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites;
    const load = execa('fio', fioArgs(primary.nbd, seed, [`--verify_pattern=0x${tag.toString(16)}%o`, '--time_based', '--runtime=120', `--write_lat_log=${ws.path('ack')}`, '--log_offset=1']), { reject: false });
    const killAfter = 32 + rng.int(512);
    for (const started = Date.now(); (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites - writesBefore < killAfter;) {
      expect(Date.now() - started, 'fio writes').toBeLessThan(60_000);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    client.close();
    const killedMs = performance.now();
    process.kill(primary.pid, 'SIGKILL');
    expect((await load).exitCode, 'fio saw the primary die').not.toBe(0);
    figures[kind]!.killToServedMs.push(Math.round(await untilServed(socketPath, killedMs)));

    const detail = readJson((await ws.run(['detail', 'tk', '--json'], { env })).stdout);
    expect(detail.daemon).toMatchObject({ pid: standby.pid, nbd: [primary.nbd], takeover: { previousPid: primary.pid, paused: false } });
    figures[kind]!.takeoverMs.push(detail.daemon.takeover.takeoverMs);

    const back = ws.path('back.bin');
    expect((await ws.run(['read', 'tk', '-o', '0', '-l', String(REGION_BYTES), '--output', back], { env })).exitCode).toBe(EXIT.OK);
    const bytes = readFileSync(back);
    const acknowledged = acknowledgedWrites('ack');
    expect(acknowledged.size).toBeGreaterThanOrEqual(killAfter - 32); // fio's 2 x 16 in flight were not all acknowledged
    const wrong: number[] = [];
    const lost: number[] = [];
    for (let index = 0; index < tags.length; index++) {
      const offsetBytes = index * BLOCK_BYTES;
      const block = bytes.subarray(offsetBytes, offsetBytes + BLOCK_BYTES);
      if (block.equals(fioBlock(tag, offsetBytes))) tags[index] = tag;
      else if (!block.equals(fioBlock(tags[index]!, offsetBytes))) wrong.push(offsetBytes);
      else if (acknowledged.has(offsetBytes)) lost.push(offsetBytes);
    }
    expect(wrong, `round ${round}: blocks holding neither the old nor the new pattern`).toEqual([]);
    expect(lost, `round ${round}: acknowledged writes lost (of ${acknowledged.size})`).toEqual([]);
    expect(readJson((await ws.run(['scrub', 'tk', '--json'], { env })).stdout).mismatchCount, `round ${round}: scrub`).toBe(0);
    primary = { ...primary, pid: standby.pid };
  }

  // The last standby serves on: fio writes and verifies through the same address.
  const verify = await execa('fio', fioArgs(primary.nbd, 7, ['--verify_pattern=0xc0c0c0c0%o', '--do_verify=1', '--size=2M']), { reject: false });
  expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0);
  expect(JSON.parse(verify.stdout.slice(verify.stdout.indexOf('{'))).jobs[0].error).toBe(0); // fio may print a line before its JSON
  expect((await ws.run(['stop', 'tk', '--all'], { env })).exitCode).toBe(EXIT.OK);
}

describe.runIf(requireTool('fio'))('standby takeover under fio, SIGKILL at a random moment', () => {
  it(`image files, ${ROUNDS} rounds`, async () => {
    ws = workspace();
    await takeoverRounds('image files', ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`)));
  }, 600_000);

  it.runIf(loopSuiteEnabled())(`loop devices, ${ROUNDS} rounds`, async () => {
    ws = workspace();
    const loops = await makeLoopDevices(ws.path('loop'), 4, MEMBER_BYTES);
    try {
      await takeoverRounds('loop devices', loops.devices);
    } finally {
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await new Promise((resolve) => setTimeout(resolve, 200));
      await loops.detach();
    }
  }, 600_000);
});
