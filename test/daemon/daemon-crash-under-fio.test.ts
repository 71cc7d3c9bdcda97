// Proves: real NBD clients work against a jraid daemon (nbdcopy 256 MiB in and qemu-img compare,
// qemu-io patterns), and a daemon SIGKILLed under fio load restarts, resyncs exactly the stripes
// its journal listed, and every write it acknowledged reads back (every block holds the old or
// the new pattern, never a torn mix), with a clean scrub, for several seeds and every
// acknowledgement level (fast promises nothing before a FLUSH: there only nothing-torn holds).
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
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

async function makeServedArray(memberBytes: number, extra: string[] = []): Promise<{ uri: string; pid: number; controlSocket: string }> {
  ws = workspace();
  const members = ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(memberBytes / 1024), '-N', 'fio', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  const daemon = await startDaemon(ws, 'fio', extra);
  pids.push(daemon.pid);
  return { uri: daemon.nbd, pid: daemon.pid, controlSocket: daemon.controlSocket };
}

/** Random 4 KiB writes over 48 MiB by two jobs, each block filled with a pattern and its offset (fioBlock). */
function fioArgs(uri: string, seed: number, extra: string[]): string[] {
  return [
    '--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32', '--numjobs=2',
    '--size=24M', '--offset_increment=24M', `--randseed=${seed}`, '--verify=pattern', '--do_verify=0', '--verify_state_save=0',
    '--group_reporting', '--output-format=json', ...extra,
  ];
}

describe.runIf(requireTool('nbdcopy') && requireTool('qemu-img') && requireTool('qemu-io'))('NBD clients against a jraid daemon', () => {
  it('nbdcopy 256 MiB in and qemu-img compare; qemu-io pattern writes and verified reads', async () => {
    const { uri } = await makeServedArray(124 * MIB); // 360 MiB array
    const source = ws.path('source.bin');
    const rng = new Rng(256);
    const out = createWriteStream(source);
    for (let i = 0; i < 256; i++) out.write(rng.bytes(MIB));
    await new Promise<void>((resolve) => out.end(resolve));
    const copied = await execa('nbdcopy', [source, uri], { reject: false });
    expect(copied.exitCode, copied.stderr).toBe(0);
    const compare = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', source, uri], { reject: false });
    expect(compare.exitCode, compare.stdout + compare.stderr).toBe(0);
    expect(compare.stdout).toMatch(/Images are identical/);
    const io = await execa('qemu-io', ['-f', 'raw', uri, '-c', 'write -P 0xab 300M 1M', '-c', 'read -P 0xab 300M 1M', '-c', 'write -P 0x5c 1000 4096', '-c', 'read -P 0x5c 1000 4096', '-c', 'flush'], { reject: false });
    expect(io.exitCode, io.stderr).toBe(0);
    expect(io.stdout).not.toMatch(/Pattern verification failed/);
    const wrong = await execa('qemu-io', ['-f', 'raw', uri, '-c', 'read -P 0x11 300M 4096'], { reject: false });
    expect(wrong.stdout + wrong.stderr).toMatch(/Pattern verification failed/);
    const scrub = await ws.run(['scrub', 'fio', '--json'], { env: daemonEnv(ws) });
    expect(readJson(scrub.stdout).mismatchCount).toBe(0);
  });
});

/** The 4 KiB block fio writes at array offset `offsetBytes` with --verify=pattern and verify_pattern=0xTAG%o: the tag and the offset (u64 LE), repeated. */
function fioBlock(tag: number, offsetBytes: number): Buffer {
  const unit = Buffer.alloc(12);
  unit.writeUInt32LE(tag, 0);
  unit.writeBigUInt64LE(BigInt(offsetBytes), 4);
  const block = Buffer.alloc(4096);
  for (let at = 0; at < block.length; at += unit.length) unit.copy(block, at, 0, Math.min(unit.length, block.length - at));
  return block;
}

/** Offsets of the writes fio logged as completed (acknowledged by the server): `time, latency, direction, size, offset, prio` per line. */
function acknowledgedWrites(dir: string, prefix: string): Set<number> {
  const offsets = new Set<number>();
  for (const name of readdirSync(dir).filter((file) => file.startsWith(`${prefix}_lat.`) && file.endsWith('.log'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n').filter(Boolean)) {
      const [, , direction, sizeBytes, offsetBytes] = line.split(',').map((field) => Number(field.trim()));
      expect(sizeBytes).toBe(4096);
      if (direction === 1) offsets.add(offsetBytes!);
    }
  }
  return offsets;
}

const PHASE_ONE_TAG = 0xa1a1a1a1;
const PHASE_TWO_TAG = 0xb2b2b2b2;
const REGION_BYTES = 48 * MIB; // two jobs of 24 MiB

describe.runIf(requireTool('fio'))('SIGKILL under fio load', () => {
  for (const [seed, toughness] of [[1, 'durable'], [2, 'atomic'], [3, 'fast'], [4, 'durable']] as const) {
    it(`seed ${seed}, toughness ${toughness}: recovery from the journal, and every acknowledged write is there`, async () => {
      const { uri, pid, controlSocket } = await makeServedArray(36 * MIB, ['--toughness', toughness]);
      const env = daemonEnv(ws);
      const rng = new Rng(seed);
      // Phase 1: fio writes pattern A over its whole region, and ends with a FLUSH (at toughness
      // fast only a FLUSH makes acknowledged writes durable: man page, TOUGHNESS).
      const first = await execa('fio', fioArgs(uri, seed, ['--verify_pattern=0xa1a1a1a1%o', '--end_fsync=1']), { reject: false });
      expect(first.exitCode, first.stderr).toBe(0);
      // Phase 2: pattern B (other blocks in another order), logging every write the server
      // acknowledges; the daemon is killed once it has acknowledged a random number of them.
      // The daemon's own count of writes it has acknowledged, over its control socket.
      const client = (await DaemonClient.connect({ controlSocket, pid } as DaemonRecord))!;
      const writesBefore = (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites;
      const second = execa('fio', fioArgs(uri, seed + 100, ['--verify_pattern=0xb2b2b2b2%o', '--time_based', '--runtime=120', `--write_lat_log=${ws.path('ack')}`, '--log_offset=1']), { reject: false });
      const killAfter = 96 + rng.int(256);
      for (const started = Date.now(); (await client.call<{ nbdWrites: number }>('status')).result.nbdWrites - writesBefore < killAfter;) {
        expect(Date.now() - started, 'phase 2 writes').toBeLessThan(60_000);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      client.close();
      process.kill(pid, 'SIGKILL');
      const killed = await second;
      expect(killed.exitCode, 'fio saw the daemon die').not.toBe(0);

      // The journal was dirty at the kill; the restart resyncs exactly the stripes it lists.
      const crashed = readJson((await ws.run(['detail', 'fio', '--json'], { env })).stdout);
      expect(crashed.journal.clean).toBe(false);
      expect(crashed.journal.dirtyStripes.length).toBeGreaterThan(0);
      const restarted = await startDaemon(ws, 'fio', ['--toughness', toughness]);
      pids.push(restarted.pid);
      expect(daemonLog(ws)).toContain(`recovered from an unclean shutdown: resynced ${crashed.journal.dirtyStripes.length} dirty stripe(s) from journal generation ${crashed.journal.generation}`);

      // Every block holds pattern A or pattern B, never anything else (nothing torn); every
      // write acknowledged in phase 2 holds B (at toughness fast an acknowledgement promises
      // nothing until a FLUSH, so there only the first holds).
      const back = ws.path('back.bin');
      expect((await ws.run(['read', 'fio', '-o', '0', '-l', String(REGION_BYTES), '--output', back], { env })).exitCode).toBe(EXIT.OK);
      const bytes = readFileSync(back);
      const acknowledged = acknowledgedWrites(ws.dir, 'ack');
      // The daemon counts a write once the array has it; at most fio's 2 x 32 in flight were not yet acknowledged.
      expect(acknowledged.size).toBeGreaterThanOrEqual(killAfter - 64);
      const wrong: number[] = [];
      const lost: number[] = [];
      let newBlocks = 0;
      for (let offsetBytes = 0; offsetBytes < REGION_BYTES; offsetBytes += 4096) {
        const block = bytes.subarray(offsetBytes, offsetBytes + 4096);
        const isNew = block.equals(fioBlock(PHASE_TWO_TAG, offsetBytes));
        if (isNew) newBlocks++;
        else if (!block.equals(fioBlock(PHASE_ONE_TAG, offsetBytes))) wrong.push(offsetBytes);
        if (!isNew && acknowledged.has(offsetBytes)) lost.push(offsetBytes);
      }
      expect(wrong, 'blocks holding neither pattern').toEqual([]);
      if (toughness !== 'fast') expect(lost, `acknowledged writes lost (of ${acknowledged.size})`).toEqual([]);
      expect(newBlocks).toBeGreaterThanOrEqual(toughness === 'fast' ? 1 : acknowledged.size);
      const scrub = await ws.run(['scrub', 'fio', '--json'], { env });
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);
      expect((await ws.run(['stop', 'fio'], { env })).exitCode).toBe(EXIT.OK);
    });
  }
});
