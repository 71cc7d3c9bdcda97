// Proves: real NBD clients work against a jraid daemon (nbdcopy 256 MiB in and qemu-img compare,
// qemu-io patterns), and a daemon SIGKILLed under fio load restarts, recovers from its journal,
// and passes fio's verify and a scrub with zero mismatches, for several seeds and every
// acknowledgement level.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createWriteStream } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { requireTool } from '../helpers/tools.js';
import { Rng } from '../../src/rng.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

async function makeServedArray(memberBytes: number, extra: string[] = []): Promise<{ uri: string; pid: number }> {
  ws = workspace();
  const members = ['a', 'b', 'c', 'd'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String(memberBytes / 1024), '-N', 'fio', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  const daemon = await startDaemon(ws, 'fio', extra);
  pids.push(daemon.pid);
  return { uri: daemon.nbd, pid: daemon.pid };
}

function fioArgs(uri: string, seed: number, extra: string[]): string[] {
  return [
    '--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32', '--numjobs=2',
    '--size=24M', '--offset_increment=24M', `--randseed=${seed}`, '--verify=crc32c', '--verify_state_save=0',
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

describe.runIf(requireTool('fio'))('SIGKILL under fio load', () => {
  for (const [seed, toughness] of [[1, 'durable'], [2, 'atomic'], [3, 'fast'], [4, 'durable']] as const) {
    it(`seed ${seed}, toughness ${toughness}: restart, recovery, fio verify and scrub pass`, async () => {
      const { uri, pid } = await makeServedArray(36 * MIB, ['--toughness', toughness]);
      // Phase 1: fio writes its whole region (verify headers), completely, and ends with a FLUSH:
      // at toughness fast only a FLUSH makes acknowledged writes durable (man page, TOUGHNESS).
      const first = await execa('fio', fioArgs(uri, seed, ['--do_verify=0', '--end_fsync=1']), { reject: false });
      expect(first.exitCode, first.stderr).toBe(0);
      // Phase 2: the same job again (same blocks, same contents), and the daemon dies mid-way.
      const second = execa('fio', fioArgs(uri, seed, ['--do_verify=0']), { reject: false });
      await new Promise((resolve) => setTimeout(resolve, 300 + new Rng(seed).int(700)));
      process.kill(pid, 'SIGKILL');
      await second;
      // Restart: recovery from the journal; then fio verifies every block it wrote.
      const env = daemonEnv(ws);
      const restarted = await startDaemon(ws, 'fio', ['--toughness', toughness]);
      pids.push(restarted.pid);
      expect(daemonLog(ws)).toMatch(/recovered from an unclean shutdown|serving NBD/);
      const verify = await execa('fio', fioArgs(restarted.nbd, seed, ['--verify_only', '--verify_fatal=1']), { reject: false });
      expect(verify.exitCode, verify.stdout.slice(-2000) + verify.stderr).toBe(0);
      const report = JSON.parse(verify.stdout.slice(verify.stdout.indexOf('{'))) as { jobs: { error: number }[] };
      expect(report.jobs.every((job) => job.error === 0)).toBe(true);
      const scrub = await ws.run(['scrub', 'fio', '--json'], { env });
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);
      expect((await ws.run(['stop', 'fio'], { env })).exitCode).toBe(EXIT.OK);
    });
  }
});
