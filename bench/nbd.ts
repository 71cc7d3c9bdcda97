// fio through jraid's NBD export beside the same fio job against nbdkit's file plugin serving
// one plain file on the same disk, in the same run: 4 KiB random write and read IOPS at QD32,
// 1 MiB sequential write MB/s; journal records per 1000 writes; random writes again with the
// resync policy (no journal) to show what the journal costs. Needs fio and nbdkit.

import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DaemonClient } from '../src/daemon/control-client.js';
import { readRegistry } from '../src/daemon/registry.js';
import { MIB } from '../src/units.js';
import type { Bench } from './measure.js';

const JRAID = resolve(import.meta.dirname, '../../bin/jraid');
const REGION = '1G';
const RUNTIME_S = 8;

interface FioFigures { iops: number; mbPerSecond: number }

async function fio(uri: string, rw: string, bs: string, iodepth: number): Promise<FioFigures> {
  const result = await execa('fio', [
    '--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${iodepth}`, `--size=${REGION}`,
    `--runtime=${RUNTIME_S}`, '--time_based', '--randrepeat=1', '--output-format=json',
  ]);
  const json = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: { read: { iops: number; bw_bytes: number }; write: { iops: number; bw_bytes: number } }[] };
  const side = rw.includes('read') ? json.jobs[0]!.read : json.jobs[0]!.write;
  return { iops: side.iops, mbPerSecond: side.bw_bytes / 1e6 };
}

async function tool(name: string): Promise<boolean> {
  return (await execa('which', [name], { reject: false })).exitCode === 0;
}

async function jraidArray(dir: string, name: string, policy: string): Promise<{ uri: string; env: Record<string, string>; stop: () => Promise<void> }> {
  const env = { JRAID_RUN_DIR: join(dir, 'run'), JRAID_CONFIG: join(dir, 'jraid.conf') };
  const members = ['a', 'b', 'c', 'd'].map((m) => join(dir, `${name}-${m}.img`));
  await execa(JRAID, ['create', '-l', '5', '-n', '4', '-c', '64K', '-z', String((400 * MIB) / 1024), '-N', name, '--consistency-policy', policy, '--save-config', '-q', ...members], { env });
  const ready = JSON.parse((await execa(JRAID, ['daemon', name, '--toughness', 'atomic', '--json', '--nbd', `unix:${join(dir, `${name}.nbd`)}`], { env })).stdout) as { nbd: string[] };
  return { uri: ready.nbd[0]!, env, stop: async () => { await execa(JRAID, ['stop', name], { env }); } };
}

async function journalStats(env: Record<string, string>, name: string): Promise<{ records: number; writes: number }> {
  const previous = process.env.JRAID_RUN_DIR;
  process.env.JRAID_RUN_DIR = env.JRAID_RUN_DIR;
  try {
    const detail = JSON.parse((await execa(JRAID, ['detail', name, '--json'], { env })).stdout) as { uuid: string };
    const record = await readRegistry(detail.uuid);
    const client = record && await DaemonClient.connect(record);
    if (!client) throw new Error('daemon not found');
    const { result } = await client.call<{ nbdWrites: number; journal: { recordsWritten: number } | null }>('status');
    client.close();
    return { records: result.journal?.recordsWritten ?? 0, writes: result.nbdWrites };
  } finally {
    if (previous === undefined) delete process.env.JRAID_RUN_DIR; else process.env.JRAID_RUN_DIR = previous;
  }
}

export const benchNbd: Bench = async (report) => {
  for (const name of ['fio', 'nbdkit']) {
    if (!(await tool(name))) {
      console.log(`nbd bench skipped: ${name} is not installed (apt-get install -y fio nbdkit)`);
      return;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-nbd-'));
  let nbdkit: ResultPromise | undefined;
  try {
    const plain = join(dir, 'plain.img');
    await writeFile(plain, '');
    await truncate(plain, 1200 * MIB);
    const kitSocket = join(dir, 'nbdkit.sock');
    nbdkit = execa('nbdkit', ['--foreground', '--unix', kitSocket, '--exit-with-parent', 'file', plain], { reject: false });
    for (let i = 0; i < 100 && (await execa('test', ['-S', kitSocket], { reject: false })).exitCode !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    const kitUri = `nbd+unix:///?socket=${kitSocket}`;
    const jraid = await jraidArray(dir, 'dirtylog', 'dirty-log');

    const seqJ = await fio(jraid.uri, 'write', '1M', 8);
    const seqK = await fio(kitUri, 'write', '1M', 8);
    report({ name: '1M sequential write', figure: seqJ.mbPerSecond, unit: 'MB/s', reference: { what: 'nbdkit file plugin', figure: seqK.mbPerSecond, unit: 'MB/s' } });
    const before = await journalStats(jraid.env, 'dirtylog');
    const rwJ = await fio(jraid.uri, 'randwrite', '4k', 32);
    const after = await journalStats(jraid.env, 'dirtylog');
    const rwK = await fio(kitUri, 'randwrite', '4k', 32);
    report({ name: '4K random write QD32', figure: rwJ.iops, unit: 'IOPS', reference: { what: 'nbdkit file plugin', figure: rwK.iops, unit: 'IOPS' } });
    const rrJ = await fio(jraid.uri, 'randread', '4k', 32);
    const rrK = await fio(kitUri, 'randread', '4k', 32);
    report({ name: '4K random read QD32', figure: rrJ.iops, unit: 'IOPS', reference: { what: 'nbdkit file plugin', figure: rrK.iops, unit: 'IOPS' } });
    const records = after.records - before.records;
    const writes = after.writes - before.writes;
    report({ name: 'journal records per 1000 writes (QD32)', figure: (1000 * records) / Math.max(1, writes), unit: 'records', reference: { what: 'one record per write', figure: 1000, unit: 'records' } });
    await jraid.stop();

    const resync = await jraidArray(dir, 'resync', 'resync');
    await fio(resync.uri, 'write', '1M', 8);
    const rwR = await fio(resync.uri, 'randwrite', '4k', 32);
    report({ name: '4K random write, dirty-log', figure: rwJ.iops, unit: 'IOPS', reference: { what: 'same, resync policy (no journal)', figure: rwR.iops, unit: 'IOPS' } });
    await resync.stop();
  } finally {
    nbdkit?.kill();
    await nbdkit?.catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
};
