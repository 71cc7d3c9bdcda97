// Proves the journal policy through the daemon: SIGKILLed under fio random writes at toughness
// durable and atomic, then one member zeroed before the restart, the daemon recovers from the
// other members' data journals, and every write it acknowledged reads back (every block holds
// the old or the new pattern, never anything else, and nothing reads as EIO).
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { closeSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { Rng } from '../../src/rng.js';
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

function fioArgs(uri: string, seed: number, extra: string[]): string[] {
  return [
    '--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32', '--numjobs=2',
    '--size=24M', '--offset_increment=24M', `--randseed=${seed}`, '--verify=pattern', '--do_verify=0', '--verify_state_save=0',
    '--group_reporting', '--output-format=json', ...extra,
  ];
}

/** The 4 KiB block fio writes at `offsetBytes` with verify_pattern=0xTAG%o. */
function fioBlock(tag: number, offsetBytes: number): Buffer {
  const unit = Buffer.alloc(12);
  unit.writeUInt32LE(tag, 0);
  unit.writeBigUInt64LE(BigInt(offsetBytes), 4);
  const block = Buffer.alloc(4096);
  for (let at = 0; at < block.length; at += unit.length) unit.copy(block, at, 0, Math.min(unit.length, block.length - at));
  return block;
}

function acknowledgedWrites(dir: string, prefix: string): Set<number> {
  const offsets = new Set<number>();
  for (const name of readdirSync(dir).filter((file) => file.startsWith(`${prefix}_lat.`) && file.endsWith('.log'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean)) {
      const [, , direction, , offsetBytes] = line.split(',').map((field) => Number(field.trim()));
      if (direction === 1) offsets.add(offsetBytes!);
    }
  }
  return offsets;
}

const PHASE_ONE_TAG = 0xa1a1a1a1;
const PHASE_TWO_TAG = 0xb2b2b2b2;
const REGION_BYTES = 48 * MIB;

describe.runIf(requireTool('fio'))('journal policy: SIGKILL under fio, then a member zeroed', () => {
  for (const [seed, toughness, lose] of [[11, 'durable', 1], [12, 'atomic', 2]] as const) {
    it(`seed ${seed}, toughness ${toughness}, member ${lose} zeroed: every acknowledged write is there`, async () => {
      ws = workspace();
      const members = ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`));
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String((36 * MIB) / 1024), '--consistency-policy', 'journal', '--journal-size', '4M', '-N', 'fio', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const daemon = await startDaemon(ws, 'fio', ['--toughness', toughness]);
      pids.push(daemon.pid);
      const env = daemonEnv(ws);
      const rng = new Rng(seed);
      const first = await execa('fio', fioArgs(daemon.nbd, seed, ['--verify_pattern=0xa1a1a1a1%o', '--end_fsync=1']), { reject: false });
      expect(first.exitCode, first.stderr).toBe(0);
      const client = (await DaemonClient.connect({ controlSocket: daemon.controlSocket, pid: daemon.pid } as DaemonRecord))!;
      const writesBefore = (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites;
      const second = execa('fio', fioArgs(daemon.nbd, seed + 100, ['--verify_pattern=0xb2b2b2b2%o', '--time_based', '--runtime=120', `--write_lat_log=${ws.path('ack')}`, '--log_offset=1']), { reject: false });
      const killAfter = 96 + rng.int(256);
      for (const started = Date.now(); (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites - writesBefore < killAfter;) {
        expect(Date.now() - started, 'phase 2 writes').toBeLessThan(60_000);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      client.close();
      process.kill(daemon.pid, 'SIGKILL');
      expect((await second).exitCode, 'fio saw the daemon die').not.toBe(0);

      // One member lost: zeroed, and left out of the config.
      const zeroed = members[lose]!;
      const fd = openSync(zeroed, 'r+');
      const zeros = Buffer.alloc(4 * MIB);
      for (let at = 0; at < statSync(zeroed).size; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
      closeSync(fd);
      writeFileSync(ws.config, readFileSync(ws.config, 'utf8').replace(`${zeroed},`, '').replace(`,${zeroed}`, ''));

      const crashed = readJson((await ws.run(['detail', 'fio', '--json'], { env })).stdout);
      expect(crashed.dataJournal.pendingRecovery).toBeGreaterThan(0);
      const restarted = await startDaemon(ws, 'fio', ['--toughness', toughness]);
      pids.push(restarted.pid);
      expect(daemonLog(ws)).toMatch(/recovered from an unclean shutdown: settled \d+ interrupted update\(s\) from the data journals/);

      const back = ws.path('back.bin');
      const read = await ws.run(['read', 'fio', '-o', '0', '-l', String(REGION_BYTES), '--output', back], { env });
      expect(read.exitCode, read.stderr).toBe(EXIT.DEGRADED); // degraded, and no EIO
      const bytes = readFileSync(back);
      const acknowledged = acknowledgedWrites(ws.dir, 'ack');
      expect(acknowledged.size).toBeGreaterThanOrEqual(killAfter - 64);
      const wrong: number[] = [];
      const lost: number[] = [];
      for (let offsetBytes = 0; offsetBytes < REGION_BYTES; offsetBytes += 4096) {
        const block = bytes.subarray(offsetBytes, offsetBytes + 4096);
        const isNew = block.equals(fioBlock(PHASE_TWO_TAG, offsetBytes));
        if (!isNew && !block.equals(fioBlock(PHASE_ONE_TAG, offsetBytes))) wrong.push(offsetBytes);
        if (!isNew && acknowledged.has(offsetBytes)) lost.push(offsetBytes);
      }
      expect(wrong, 'blocks holding neither pattern').toEqual([]);
      expect(lost, `acknowledged writes lost (of ${acknowledged.size})`).toEqual([]);
      expect((await ws.run(['stop', 'fio'], { env })).exitCode).toBe(EXIT.OK);
    }, 300_000);
  }
});
