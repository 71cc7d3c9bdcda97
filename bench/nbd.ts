// fio through jraid's NBD export beside the same fio job against nbdkit's file plugin serving
// one plain file on the same disk, in the same run: 4 KiB random write and read IOPS at QD32,
// 1 MiB sequential write MB/s; journal records per 1000 writes; random writes again with the
// resync policy (no journal) to show what the journal costs, and the journal policy beside both.
// Needs fio and nbdkit.
//
// First, the protocol ceiling: the same fio jobs against jraid's NbdServer over a backend that
// does nothing (run in this process), beside nbdkit's null plugin; with, for jraid's server,
// the heap bytes it allocates per request and the garbage collections per 100k requests.
// JRAID_BENCH_NBD_CEILING_ONLY=1 stops after the ceiling (quick to repeat while working on the server).

import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import v8 from 'node:v8';
import { truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DaemonClient } from '../src/daemon/control-client.js';
import { NbdServer, type NbdBackend } from '../src/daemon/nbd-server.js';
import { readRegistry } from '../src/daemon/registry.js';
import { GIB, MIB } from '../src/units.js';
import type { Bench } from './measure.js';

const JRAID = resolve(import.meta.dirname, '../../bin/jraid');
const REGION = '1G';
const RUNTIME_S = 8;

interface FioFigures { iops: number; mbPerSecond: number; requests: number }

type FioSide = { iops: number; bw_bytes: number; total_ios: number };

async function fio(uri: string, rw: string, bs: string, iodepth: number): Promise<FioFigures> {
  const result = await execa('fio', [
    '--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${iodepth}`, `--size=${REGION}`,
    `--runtime=${RUNTIME_S}`, '--time_based', '--randrepeat=1', '--output-format=json',
  ]);
  const json = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: { read: FioSide; write: FioSide }[] };
  const side = rw.includes('read') ? json.jobs[0]!.read : json.jobs[0]!.write;
  return { iops: side.iops, mbPerSecond: side.bw_bytes / 1e6, requests: side.total_ios };
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

// --- The protocol ceiling ------------------------------------------------------------------

/** nbdkit's null plugin, in this process: writes vanish, reads are zeroes, nothing is kept. */
class NullNbdBackend implements NbdBackend {
  constructor(readonly sizeBytes: number) {}

  async read(_offsetBytes: number, _lengthBytes: number, target: Buffer): Promise<Buffer> {
    return target.fill(0);
  }

  async write(): Promise<void> {}
  async flush(): Promise<void> {}
  async trim(): Promise<void> {}
  async writeZeroes(): Promise<void> {}
}

/** Heap bytes this process allocated and the collections it ran while `work` ran (v8's GC profiler sees each collection's before and after). */
async function allocationDuring<T>(work: () => Promise<T>): Promise<{ result: T; heapBytes: number; collections: number }> {
  const profiler = new v8.GCProfiler();
  const usedBefore = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const result = await work();
  const { statistics } = profiler.stop();
  const usedAfter = v8.getHeapStatistics().used_heap_size;
  let freedBytes = 0;
  for (const gc of statistics) freedBytes += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  return { result, heapBytes: freedBytes + usedAfter - usedBefore, collections: statistics.length };
}

const CEILING_JOBS = [
  { name: '4K random write QD32', rw: 'randwrite', bs: '4k', iodepth: 32, payloadBytes: 4096 },
  { name: '4K random read QD32', rw: 'randread', bs: '4k', iodepth: 32, payloadBytes: 4096 },
  { name: '1M sequential write', rw: 'write', bs: '1M', iodepth: 8, payloadBytes: MIB },
] as const;

async function benchCeiling(dir: string, report: Parameters<Bench>[0]): Promise<void> {
  const kitSocket = join(dir, 'nbdkit-null.sock');
  const nbdkit = execa('nbdkit', ['--foreground', '--unix', kitSocket, '--exit-with-parent', 'null', `size=${GIB}`], { reject: false });
  const server = new NbdServer({ backend: new NullNbdBackend(GIB) });
  try {
    const jraidSocket = join(dir, 'jraid-null.sock');
    await server.listen({ kind: 'unix', path: jraidSocket });
    for (let i = 0; i < 100 && (await execa('test', ['-S', kitSocket], { reject: false })).exitCode !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    for (const job of CEILING_JOBS) {
      const jraid = await allocationDuring(() => fio(`nbd+unix:///?socket=${jraidSocket}`, job.rw, job.bs, job.iodepth));
      const kit = await fio(`nbd+unix:///?socket=${kitSocket}`, job.rw, job.bs, job.iodepth);
      const bandwidth = job.bs === '1M';
      report({
        name: `ceiling ${job.name}`, figure: bandwidth ? jraid.result.mbPerSecond : jraid.result.iops, unit: bandwidth ? 'MB/s' : 'IOPS',
        reference: { what: 'nbdkit null plugin', figure: bandwidth ? kit.mbPerSecond : kit.iops, unit: bandwidth ? 'MB/s' : 'IOPS' },
      });
      const requests = Math.max(1, jraid.result.requests);
      report({
        name: `  heap bytes per request (${((100_000 * jraid.collections) / requests).toFixed(1)} GCs per 100k requests)`,
        figure: jraid.heapBytes / requests, unit: 'B',
        reference: { what: 'the payload it carries', figure: job.payloadBytes, unit: 'B' },
      });
    }
  } finally {
    await server.close();
    nbdkit.kill();
    await nbdkit.catch(() => {});
  }
}

export const benchNbd: Bench = async (report) => {
  for (const name of ['fio', 'nbdkit']) {
    if (!(await tool(name))) {
      console.log(`nbd bench skipped: ${name} is not installed (apt-get install -y fio nbdkit)`);
      return;
    }
  }
  const ceilingDir = mkdtempSync(join(tmpdir(), 'jraid-bench-nbd-ceiling-'));
  try {
    await benchCeiling(ceilingDir, report);
  } finally {
    rmSync(ceilingDir, { recursive: true, force: true });
  }
  if (process.env.JRAID_BENCH_NBD_CEILING_ONLY === '1') return;
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
    const seqR = await fio(resync.uri, 'write', '1M', 8);
    const rwR = await fio(resync.uri, 'randwrite', '4k', 32);
    report({ name: '4K random write, dirty-log', figure: rwJ.iops, unit: 'IOPS', reference: { what: 'same, resync policy (no journal)', figure: rwR.iops, unit: 'IOPS' } });
    await resync.stop();

    // The journal policy writes every block twice (its journal, then in place): the goal is half
    // of dirty-log's random-write rate (md's write-through journal pays at least that).
    const journal = await jraidArray(dir, 'journal', 'journal');
    const seqD = await fio(journal.uri, 'write', '1M', 8);
    const rwD = await fio(journal.uri, 'randwrite', '4k', 32);
    report({ name: '4K random write QD32, journal policy', figure: rwD.iops, unit: 'IOPS', reference: { what: 'same, dirty-log', figure: rwJ.iops, unit: 'IOPS' }, goal: 0.5 });
    report({ name: '4K random write QD32, journal policy', figure: rwD.iops, unit: 'IOPS', reference: { what: 'same, resync policy (no journal)', figure: rwR.iops, unit: 'IOPS' } });
    report({ name: '1M sequential write, journal policy', figure: seqD.mbPerSecond, unit: 'MB/s', reference: { what: 'same, dirty-log', figure: seqJ.mbPerSecond, unit: 'MB/s' } });
    report({ name: '1M sequential write, journal policy', figure: seqD.mbPerSecond, unit: 'MB/s', reference: { what: 'same, resync policy (no journal)', figure: seqR.mbPerSecond, unit: 'MB/s' } });
    await journal.stop();
  } finally {
    nbdkit?.kill();
    await nbdkit?.catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
};
