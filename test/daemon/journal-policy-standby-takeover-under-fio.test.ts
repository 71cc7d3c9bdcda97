// Proves a standby completes a journal-policy primary's pending writes (seed 003) with a member
// lost: the standby paused, the primary SIGKILLed under fio random writes at toughness atomic
// (durable too with JRAID_TAKEOVER_ALL_TOUGHNESS=1), one member zeroed and left out of the config,
// then the standby resumes, settles the data journals from the other members and takes over on
// the same NBD address; every write the primary acknowledged reads back degraded (no EIO), every
// block holds zeros (never written) or the new pattern, scrub after a rebuild finds nothing, and
// fio writes and verifies through it. (A SIGKILL keeps the page cache: with fast members and no
// member lost, the in-place writes issued before the kill land anyway and hide a recovery that
// does nothing; so the primary's members are slowed, and one is lost.)
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { closeSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { Rng } from '../../src/rng.js';
import { MIB } from '../../src/units.js';
import { DaemonClient } from '../../src/daemon/control-client.js';
import type { DaemonRecord } from '../../src/daemon/registry.js';

const MEMBER_BYTES = 16 * MIB;
const REGION_BYTES = 24 * MIB; // two fio jobs of 12 MiB: many stripes, so many updates in flight at the kill
const CASES: [number, 'durable' | 'atomic'][] = process.env.JRAID_TAKEOVER_ALL_TOUGHNESS ? [[21, 'durable'], [22, 'atomic']] : [[22, 'atomic']];
const BLOCK_BYTES = 4096;
const MEMBER_LATENCY_MS = 3;
const ZEROS = Buffer.alloc(BLOCK_BYTES);
const NEW_TAG = 0xb4b4b4b4;

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

function fioArgs(uri: string, seed: number, extra: string[]): string[] {
  return [
    '--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', `--bs=${BLOCK_BYTES}`, '--iodepth=32', '--numjobs=2',
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
  }
  return offsets;
}

describe.runIf(requireTool('fio'))('journal policy: standby takeover under fio, primary SIGKILLed', () => {
  for (const [seed, toughness] of CASES) {
    it(`toughness ${toughness}: the standby settles the journals, every acknowledged write reads back`, async () => {
      ws = workspace();
      const members = ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`));
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(MEMBER_BYTES / 1024), '--consistency-policy', 'journal', '--journal-size', '4M', '-N', 'jt', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const env = daemonEnv(ws);
      const lose = new Rng(seed + 1).int(members.length);
      // The primary's members answer slowly (JRAID_FAULTS latency, as a loaded disk would): the
      // in-place writes of acknowledged updates are still pending at the kill, so only recovery
      // brings them back.
      const slow = JSON.stringify(members.map((path) => ({ path, latencyMs: MEMBER_LATENCY_MS })));
      const primary = await startDaemon(ws, 'jt', ['--toughness', toughness], { JRAID_FAULTS: slow });
      pids.push(primary.pid);
      const standby = await startDaemon(ws, 'jt', ['--toughness', toughness, '--standby']);
      pids.push(standby.pid);

      const client = (await DaemonClient.connect({ controlSocket: primary.controlSocket, pid: primary.pid } as DaemonRecord))!;
      const writesBefore = (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites;
      const load = execa('fio', fioArgs(primary.nbd, seed + 100, [`--verify_pattern=0x${NEW_TAG.toString(16)}%o`, '--time_based', '--runtime=120', `--write_lat_log=${ws.path('ack')}`, '--log_offset=1']), { reject: false });
      const killAfter = 64 + new Rng(seed).int(384);
      for (const started = Date.now(); (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites - writesBefore < killAfter;) {
        expect(Date.now() - started, 'fio writes').toBeLessThan(60_000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      client.close();
      // The standby paused so it cannot take over before the member is lost.
      process.kill(standby.pid, 'SIGSTOP');
      process.kill(primary.pid, 'SIGKILL');
      expect((await load).exitCode, 'fio saw the primary die').not.toBe(0);

      // One member lost while nobody serves: zeroed, and left out of the config.
      const zeroed = members[lose]!;
      const fd = openSync(zeroed, 'r+');
      const zeros = Buffer.alloc(4 * MIB);
      for (let at = 0; at < statSync(zeroed).size; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
      closeSync(fd);
      writeFileSync(ws.config, readFileSync(ws.config, 'utf8').replace(`${zeroed},`, '').replace(`,${zeroed}`, ''));
      const crashed = readJson((await ws.run(['detail', 'jt', '--json'], { env })).stdout);
      expect(crashed.dataJournal.pendingRecovery, 'updates the standby must settle').toBeGreaterThan(0);
      process.kill(standby.pid, 'SIGCONT');

      // The standby takes over (on the primary's NBD address) once it has settled the journals.
      let detail: ReturnType<typeof readJson> | undefined;
      for (const started = Date.now(); ;) {
        detail = readJson((await ws.run(['detail', 'jt', '--json'], { env })).stdout);
        if (detail.daemon?.pid === standby.pid) break;
        expect(Date.now() - started, `the standby takes over\n${daemonLog(ws)}`).toBeLessThan(60_000);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(detail!.daemon).toMatchObject({ pid: standby.pid, nbd: [primary.nbd], takeover: { previousPid: primary.pid } });
      expect(detail!.dataJournal.pendingRecovery ?? 0).toBe(0);
      expect(daemonLog(ws)).toMatch(/recovered from an unclean shutdown: settled \d+ interrupted update\(s\) from the data journals/);

      const back = ws.path('back.bin');
      const read = await ws.run(['read', 'jt', '-o', '0', '-l', String(REGION_BYTES), '--output', back], { env });
      expect(read.exitCode, read.stderr).toBe(EXIT.DEGRADED); // degraded, and no EIO
      const bytes = readFileSync(back);
      const acknowledged = acknowledgedWrites('ack');
      expect(acknowledged.size).toBeGreaterThanOrEqual(killAfter - 64); // fio's 2 x 32 in flight were not all acknowledged
      const wrong: number[] = [];
      const lost: number[] = [];
      for (let offsetBytes = 0; offsetBytes < REGION_BYTES; offsetBytes += BLOCK_BYTES) {
        const block = bytes.subarray(offsetBytes, offsetBytes + BLOCK_BYTES);
        const isNew = block.equals(fioBlock(NEW_TAG, offsetBytes));
        if (!isNew && !block.equals(ZEROS)) wrong.push(offsetBytes); // new members: the array reads zeros before
        if (!isNew && acknowledged.has(offsetBytes)) lost.push(offsetBytes);
      }
      expect(wrong, 'blocks holding neither pattern').toEqual([]);
      expect(lost, `acknowledged writes lost (of ${acknowledged.size})`).toEqual([]);

      // Rebuilt onto a replacement, parity agrees with the data everywhere.
      const replacement = ws.path('r.img');
      writeFileSync(replacement, '');
      truncateSync(replacement, statSync(members[(lose + 1) % members.length]!).size);
      const rebuild = await ws.run(['rebuild', 'jt', '--replacement', replacement], { env });
      expect(rebuild.exitCode, rebuild.stderr).toBe(EXIT.OK);
      expect(readJson((await ws.run(['scrub', 'jt', '--json'], { env })).stdout).mismatchCount).toBe(0);
      const again = await ws.run(['read', 'jt', '-o', '0', '-l', String(REGION_BYTES), '--output', back], { env });
      expect(again.exitCode, again.stderr).toBe(EXIT.OK);
      expect(readFileSync(back).equals(bytes), 'the rebuilt array reads as it did degraded').toBe(true);

      // The standby serves on: fio writes and verifies through the same address.
      const verify = await execa('fio', fioArgs(primary.nbd, 7, ['--verify_pattern=0xc5c5c5c5%o', '--do_verify=1', '--size=1M']), { reject: false });
      expect(verify.exitCode, verify.stdout + verify.stderr + daemonLog(ws)).toBe(0);
      expect(JSON.parse(verify.stdout.slice(verify.stdout.indexOf('{'))).jobs[0].error).toBe(0);
      expect((await ws.run(['stop', 'jt', '--all'], { env })).exitCode).toBe(EXIT.OK);
    }, 300_000);
  }
});
