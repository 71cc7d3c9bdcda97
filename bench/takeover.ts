// Standby takeover time (issue 13): a 1 GiB RAID-5 served by a primary with a standby, fio
// random writes at toughness durable keeping the journal dirty, the primary SIGKILLed; the
// figure is from the kill to the first NBD read the standby answers (a fresh client connecting
// to the same address), median and max over TAKEOVERS. The reference: the same kill, then a
// daemon started from scratch (what an administrator or a supervisor would do), to its first
// served read. The goal: a median under 1 s. Needs fio.

import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  GREETING_SIZE_BYTES, NBD_CMD_READ, NBD_FLAG_C_FIXED_NEWSTYLE, NBD_FLAG_C_NO_ZEROES, NBD_OPT_GO, NBD_REP_ACK,
  OPTION_REPLY_HEADER_SIZE_BYTES, SIMPLE_REPLY_HEADER_SIZE_BYTES, encodeInfoRequest, encodeOptionHeader, encodeRequestHeader,
} from '../src/daemon/nbd-protocol.js';
import { MIB } from '../src/units.js';
import type { Bench } from './measure.js';

const JRAID = resolve(import.meta.dirname, '../../bin/jraid');
const TAKEOVERS = Number(process.env.JRAID_BENCH_TAKEOVERS ?? 10);
const RESTARTS = 3;
const LOAD_MS = 1500;
const PROBE_BLOCK_BYTES = 4096;

/** One NBD read through a fresh connection: true when it was answered without error. */
function probeRead(socketPath: string): Promise<boolean> {
  return new Promise((done) => {
    const socket: Socket = connect(socketPath);
    let buffered = Buffer.alloc(0);
    let stage: 'greeting' | 'options' | 'reply' = 'greeting';
    const finish = (ok: boolean) => { socket.destroy(); done(ok); };
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
    socket.setTimeout(2000, () => finish(false));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (stage === 'greeting') {
          if (buffered.length < GREETING_SIZE_BYTES) return;
          buffered = buffered.subarray(GREETING_SIZE_BYTES);
          const flags = Buffer.alloc(4);
          flags.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES, 0);
          socket.write(Buffer.concat([flags, encodeOptionHeader(NBD_OPT_GO, encodeInfoRequest('', []))]));
          stage = 'options';
        } else if (stage === 'options') {
          if (buffered.length < OPTION_REPLY_HEADER_SIZE_BYTES) return;
          const length = OPTION_REPLY_HEADER_SIZE_BYTES + buffered.readUInt32BE(16);
          if (buffered.length < length) return;
          const replyType = buffered.readUInt32BE(12);
          buffered = buffered.subarray(length);
          if (replyType >>> 31) return finish(false);
          if (replyType !== NBD_REP_ACK) continue;
          socket.write(encodeRequestHeader({ flags: 0, type: NBD_CMD_READ, handle: 1n, offset: 0n, lengthBytes: PROBE_BLOCK_BYTES }));
          stage = 'reply';
        } else {
          if (buffered.length < SIMPLE_REPLY_HEADER_SIZE_BYTES) return;
          return finish(buffered.readUInt32BE(4) === 0);
        }
      }
    });
  });
}

async function untilServedMs(socketPath: string, killedMs: number): Promise<number> {
  while (!(await probeRead(socketPath))) {
    if (performance.now() - killedMs > 120_000) throw new Error('nothing served within 120 s');
    await new Promise((done) => setTimeout(done, 2));
  }
  return performance.now() - killedMs;
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

export const benchTakeover: Bench = async (report) => {
  if ((await execa('which', ['fio'], { reject: false })).exitCode !== 0) {
    console.log('takeover: skipped (needs fio)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-takeover-'));
  const env = { ...process.env, JRAID_RUN_DIR: join(dir, 'run'), JRAID_CONFIG: join(dir, 'jraid.conf') };
  const socketPath = join(dir, 'tk.nbd');
  const uri = `nbd+unix:///?socket=${socketPath}`;
  const daemonArgs = ['daemon', 'tk', '--json', '--toughness', 'durable', '--nbd', `unix:${socketPath}`];
  const pids: number[] = [];
  try {
    const members = ['a', 'b', 'c', 'd'].map((m) => join(dir, `${m}.img`));
    // 4 x 342 MiB on RAID-5: a 1 GiB array (plus metadata).
    await execa(JRAID, ['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String((342 * MIB) / 1024), '-N', 'tk', '--save-config', '-q', ...members], { env });
    const start = async (extra: string[] = []) => {
      const pid = (JSON.parse((await execa(JRAID, [...daemonArgs, ...extra], { env })).stdout) as { pid: number }).pid;
      pids.push(pid);
      return pid;
    };
    /** Dirty the journal with fio for LOAD_MS, then SIGKILL `pid` mid-load; returns the kill time. */
    const killUnderLoad = async (pid: number) => {
      const load = execa('fio', ['--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32', '--size=1G', '--time_based', '--runtime=60'], { reject: false });
      await new Promise((done) => setTimeout(done, LOAD_MS));
      const killedMs = performance.now();
      process.kill(pid, 'SIGKILL');
      await load;
      return killedMs;
    };

    const takeoverMs: number[] = [];
    let primary = await start();
    for (let round = 0; round < TAKEOVERS; round++) {
      const standby = await start(['--standby']);
      const killedMs = await killUnderLoad(primary);
      takeoverMs.push(await untilServedMs(socketPath, killedMs));
      primary = standby;
    }
    const restartMs: number[] = [];
    for (let round = 0; round < RESTARTS; round++) {
      const killedMs = await killUnderLoad(primary);
      primary = await start();
      restartMs.push(await untilServedMs(socketPath, killedMs));
    }
    await execa(JRAID, ['stop', 'tk', '--all'], { env, reject: false });
    report({
      id: 'takeover-median', name: `takeover median of ${TAKEOVERS} (1 GiB, dirty journal)`, figure: median(takeoverMs), unit: 'ms',
      reference: { what: `kill, then jraid daemon started afresh, median of ${RESTARTS}`, figure: median(restartMs), unit: 'ms' },
    });
    report({
      id: 'takeover-max', name: `takeover max of ${TAKEOVERS}`, figure: Math.max(...takeoverMs), unit: 'ms',
      reference: { what: `the afresh start, max of ${RESTARTS}`, figure: Math.max(...restartMs), unit: 'ms' },
    });
  } finally {
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
};
