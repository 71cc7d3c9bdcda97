// fio through jraid's NBD export beside the same fio job against nbdkit's file plugin serving
// one plain file on the same disk, in the same run: 1 MiB sequential write MB/s, 4 KiB random
// write and read IOPS at QD32 (RAID-5, dirty-log, toughness atomic), the random write again at
// toughness durable with a FLUSH after every 32 writes (nbdkit gets the same FLUSHes), user
// writes per journal record, the random write with the resync policy (no journal) to show what
// the journal costs, RAID-6 beside RAID-5, and the daemon's peak RSS under QD128 on 4
// connections, and the journal policy's random and sequential writes beside dirty-log and
// resync. Needs fio and nbdkit.
//
// Prepared the same way (PERF-NOTES, ext4 large folios): jraid's members are first filled
// through the export by 1 MiB writes, which reach each member as one write per 64 KiB chunk;
// nbdkit's file is first filled by 64 KiB writes. Both page caches are then built of the same
// pieces, so neither side measures a different ext4 layout.
//
// First, the protocol ceiling: the same fio jobs against jraid's NbdServer over a backend that
// does nothing (run in this process), beside nbdkit's null plugin; with, for jraid's server,
// the heap bytes it allocates per request and the garbage collections per 100k requests.
// JRAID_BENCH_NBD_CEILING_ONLY=1 stops after the ceiling (quick to repeat while working on the server).

import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import v8 from 'node:v8';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DaemonClient } from '../src/daemon/control-client.js';
import { NbdServer, type NbdBackend } from '../src/daemon/nbd-server.js';
import { readRegistry } from '../src/daemon/registry.js';
import { GIB, MIB } from '../src/units.js';
import { isQuick, sized, type Bench } from './measure.js';

const JRAID = resolve(import.meta.dirname, '../../bin/jraid');
/** Per member of every array here; with 3 data members (RAID-5 on 4, RAID-6 on 5) the export holds the region. */
const memberMib = () => sized(400, 24);
const regionMib = () => sized(1024, 48);
const runtime = () => sized('8s', '500ms');
const CHUNK = '64K';
/** Issue 11's goals, as ratios to the reference. */
const GOALS = { seqWrite: 0.7, randWrite: 0.5, randRead: 0.8, journalCost: 0.9, writesPerRecord: 16, rssRatio: 1, journalPolicyRandWrite: 0.5 };
const RSS_BUDGET_MIB = 256;

interface FioFigures { iops: number; mbPerSecond: number; requests: number }

type FioSide = { iops: number; bw_bytes: number; total_ios: number };

/** One timed fio job through the NBD export at `uri` (`extra`: more fio options; a job without --time_based runs once over the region). */
export async function fio(uri: string, rw: string, bs: string, iodepth: number, extra: string[] = ['--time_based']): Promise<FioFigures> {
  const result = await execa('fio', [
    '--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${iodepth}`, `--size=${regionMib()}M`,
    `--runtime=${runtime()}`, '--randrepeat=1', '--group_reporting', '--output-format=json', ...extra,
  ]);
  const json = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: { read: FioSide; write: FioSide }[] };
  const side = rw.includes('read') ? json.jobs[0]!.read : json.jobs[0]!.write;
  return { iops: side.iops, mbPerSecond: side.bw_bytes / 1e6, requests: side.total_ios };
}

async function tool(name: string): Promise<boolean> {
  return (await execa('which', [name], { reject: false })).exitCode === 0;
}

export interface Daemon { uri: string; env: Record<string, string>; pid: number; stop: () => Promise<void> }

/** Creates an array of sparse member files (chunk 64 KiB); returns the daemon starter. */
export async function jraidArray(dir: string, name: string, options: { level: 5 | 6; policy: string }): Promise<{ start: (toughness: string, daemonEnv?: Record<string, string>) => Promise<Daemon> }> {
  const env = { JRAID_RUN_DIR: join(dir, 'run'), JRAID_CONFIG: join(dir, 'jraid.conf') };
  const count = options.level === 5 ? 4 : 5;
  const members = Array.from({ length: count }, (_, i) => join(dir, `${name}-${i}.img`));
  await execa(JRAID, ['create', '-l', String(options.level), '-n', String(count), '-c', CHUNK, '-z', String((memberMib() * MIB) / 1024), '-N', name,
    '--consistency-policy', options.policy, ...(options.policy === 'journal' ? ['--journal-size', `${sized(16, 1)}M`] : []), '--save-config', '-q', ...members], { env });
  return {
    start: async (toughness, daemonEnv = {}) => {
      const ready = JSON.parse((await execa(JRAID, ['daemon', name, '--toughness', toughness, '--json', '--nbd', `unix:${join(dir, `${name}.nbd`)}`], { env: { ...env, ...daemonEnv } })).stdout) as { nbd: string[]; pid: number };
      return { uri: ready.nbd[0]!, env, pid: ready.pid, stop: async () => { await execa(JRAID, ['stop', name], { env }); } };
    },
  };
}

/** The daemon's peak resident set so far (VmHWM), in MiB. */
async function peakRssMib(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kib[1]) / 1024;
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
  { id: 'randwrite', name: '4K random write QD32', rw: 'randwrite', bs: '4k', iodepth: 32, payloadBytes: 4096 },
  { id: 'randread', name: '4K random read QD32', rw: 'randread', bs: '4k', iodepth: 32, payloadBytes: 4096 },
  { id: 'seq-write', name: '1M sequential write', rw: 'write', bs: '1M', iodepth: 8, payloadBytes: MIB },
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
        id: `ceiling-${job.id}`, name: `ceiling ${job.name}`, figure: bandwidth ? jraid.result.mbPerSecond : jraid.result.iops, unit: bandwidth ? 'MB/s' : 'IOPS',
        reference: { what: 'nbdkit null plugin', figure: bandwidth ? kit.mbPerSecond : kit.iops, unit: bandwidth ? 'MB/s' : 'IOPS' },
      });
      const requests = Math.max(1, jraid.result.requests);
      report({
        id: `ceiling-${job.id}-heap-bytes`, name: `  heap bytes per request (${((100_000 * jraid.collections) / requests).toFixed(1)} GCs per 100k requests)`,
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
  if (!isQuick()) {
    const ceilingDir = mkdtempSync(join(tmpdir(), 'jraid-bench-nbd-ceiling-'));
    try {
      await benchCeiling(ceilingDir, report);
    } finally {
      rmSync(ceilingDir, { recursive: true, force: true });
    }
    if (process.env.JRAID_BENCH_NBD_CEILING_ONLY === '1') return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'jraid-bench-nbd-'));
  let nbdkit: ResultPromise | undefined;
  const daemons: Daemon[] = [];
  const started = async (array: { start: (toughness: string) => Promise<Daemon> }, toughness: string) => {
    const daemon = await array.start(toughness);
    daemons.push(daemon);
    return daemon;
  };
  const stop = async (daemon: Daemon) => {
    await daemon.stop();
    daemons.splice(daemons.indexOf(daemon), 1);
  };
  try {
    // The reference: nbdkit's file plugin on a plain file, laid out by 64 KiB writes (see the top).
    const plain = join(dir, 'plain.img');
    await writeFile(plain, '');
    await truncate(plain, (regionMib() + 16) * MIB);
    await execa('fio', ['--name=layout', '--ioengine=psync', `--filename=${plain}`, '--rw=write', `--bs=${CHUNK.toLowerCase()}`, `--size=${regionMib()}M`, '--end_fsync=1']);
    const kitSocket = join(dir, 'nbdkit.sock');
    nbdkit = execa('nbdkit', ['--foreground', '--unix', kitSocket, '--exit-with-parent', 'file', plain], { reject: false });
    for (let i = 0; i < 100 && (await execa('test', ['-S', kitSocket], { reject: false })).exitCode !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    const kit = `nbd+unix:///?socket=${kitSocket}`;
    const kitRef = (figure: number, unit: string, what = 'nbdkit file plugin') => ({ what, figure, unit });
    /** jraid's members laid out as the reference file: the whole region written once by 1 MiB writes (64 KiB per member). */
    const layOut = (uri: string) => fio(uri, 'write', '1M', 8, []);

    const raid5 = await jraidArray(dir, 'r5', { level: 5, policy: 'dirty-log' });
    let daemon = await started(raid5, 'atomic');
    await layOut(daemon.uri);
    const seq5 = await fio(daemon.uri, 'write', '1M', 8);
    const seqKit = await fio(kit, 'write', '1M', 8);
    report({ id: 'nbd-seq-write-raid5', name: 'NBD 1M seq write QD8, RAID-5', figure: seq5.mbPerSecond, unit: 'MB/s', reference: kitRef(seqKit.mbPerSecond, 'MB/s'), goal: GOALS.seqWrite });
    const before = await journalStats(daemon.env, 'r5');
    const rw5 = await fio(daemon.uri, 'randwrite', '4k', 32);
    const after = await journalStats(daemon.env, 'r5');
    const rwKit = await fio(kit, 'randwrite', '4k', 32);
    report({ id: 'nbd-randwrite-raid5', name: 'NBD 4K randwrite QD32, RAID-5 atomic', figure: rw5.iops, unit: 'IOPS', reference: kitRef(rwKit.iops, 'IOPS'), goal: GOALS.randWrite });
    const rr5 = await fio(daemon.uri, 'randread', '4k', 32);
    const rrKit = await fio(kit, 'randread', '4k', 32);
    report({ id: 'nbd-randread-raid5', name: 'NBD 4K randread QD32, RAID-5', figure: rr5.iops, unit: 'IOPS', reference: kitRef(rrKit.iops, 'IOPS'), goal: GOALS.randRead });
    const records = Math.max(1, after.records - before.records);
    report({
      id: 'nbd-writes-per-record', name: 'user writes per journal record, QD32', figure: (after.writes - before.writes) / records, unit: 'writes',
      reference: { what: 'one write per record', figure: 1, unit: 'writes' }, goal: GOALS.writesPerRecord,
    });
    await stop(daemon);

    // Toughness durable, with a FLUSH after every 32 writes on both sides.
    daemon = await started(raid5, 'durable');
    const durable5 = await fio(daemon.uri, 'randwrite', '4k', 32, ['--time_based', '--fsync=32']);
    const durableKit = await fio(kit, 'randwrite', '4k', 32, ['--time_based', '--fsync=32']);
    report({
      id: 'nbd-randwrite-durable-flush32', name: 'NBD 4K randwrite QD32 durable, FLUSH/32', figure: durable5.iops, unit: 'IOPS',
      reference: kitRef(durableKit.iops, 'IOPS', 'nbdkit file plugin, FLUSH/32'),
    });
    await stop(daemon);

    // Peak RSS of a daemon started afresh, under QD128 on 4 connections: 4 KiB random writes, then 1 MiB writes.
    daemon = await started(raid5, 'atomic');
    const budget = { what: `issue 11's budget`, figure: RSS_BUDGET_MIB, unit: 'MiB' };
    const fourJobs = ['--time_based', '--numjobs=4'];
    await fio(daemon.uri, 'randwrite', '4k', 128, fourJobs);
    report({ id: 'daemon-peak-rss-4k', name: 'daemon peak RSS, 4K randwrite QD128 x4', figure: await peakRssMib(daemon.pid), unit: 'MiB', reference: budget, goal: GOALS.rssRatio, goalDirection: 'atMost' });
    await fio(daemon.uri, 'write', '1M', 128, [...fourJobs, `--size=${regionMib() / 4}M`, `--offset_increment=${regionMib() / 4}M`]);
    report({ id: 'daemon-peak-rss-1m', name: '  then 1M write QD128 x4 (peak so far)', figure: await peakRssMib(daemon.pid), unit: 'MiB', reference: budget, goal: GOALS.rssRatio, goalDirection: 'atMost' });
    await stop(daemon);

    // What the journal costs: the same random writes on an array without one (resync policy).
    const resync = await jraidArray(dir, 'rs', { level: 5, policy: 'resync' });
    daemon = await started(resync, 'atomic');
    await layOut(daemon.uri);
    const rwResync = await fio(daemon.uri, 'randwrite', '4k', 32);
    const seqResync = await fio(daemon.uri, 'write', '1M', 8);
    report({
      id: 'nbd-dirtylog-vs-resync', name: 'NBD 4K randwrite QD32, dirty-log', figure: rw5.iops, unit: 'IOPS',
      reference: { what: 'same, resync policy (no journal)', figure: rwResync.iops, unit: 'IOPS' }, goal: GOALS.journalCost,
    });
    await stop(daemon);

    // The journal policy writes every block twice (its data journal, then in place): the goal is
    // half of dirty-log's random-write rate (md's write-through journal pays at least that).
    const journalPolicy = await jraidArray(dir, 'jp', { level: 5, policy: 'journal' });
    daemon = await started(journalPolicy, 'atomic');
    await layOut(daemon.uri);
    const rwJournal = await fio(daemon.uri, 'randwrite', '4k', 32);
    const seqJournal = await fio(daemon.uri, 'write', '1M', 8);
    report({
      id: 'nbd-journal-policy-randwrite', name: 'NBD 4K randwrite QD32, journal policy', figure: rwJournal.iops, unit: 'IOPS',
      reference: { what: 'same, dirty-log', figure: rw5.iops, unit: 'IOPS' }, goal: GOALS.journalPolicyRandWrite,
    });
    report({ id: 'nbd-journal-policy-randwrite-vs-resync', name: '  the same beside resync', figure: rwJournal.iops, unit: 'IOPS', reference: { what: 'same, resync policy', figure: rwResync.iops, unit: 'IOPS' } });
    report({ id: 'nbd-journal-policy-seq-write', name: 'NBD 1M seq write QD8, journal policy', figure: seqJournal.mbPerSecond, unit: 'MB/s', reference: { what: 'same, dirty-log', figure: seq5.mbPerSecond, unit: 'MB/s' } });
    report({ id: 'nbd-journal-policy-seq-write-vs-resync', name: '  the same beside resync', figure: seqJournal.mbPerSecond, unit: 'MB/s', reference: { what: 'same, resync policy', figure: seqResync.mbPerSecond, unit: 'MB/s' } });
    await stop(daemon);

    // RAID-6 on 5 members (3 data, as the RAID-5 on 4), beside the RAID-5 figures above.
    const raid6 = await jraidArray(dir, 'r6', { level: 6, policy: 'dirty-log' });
    daemon = await started(raid6, 'atomic');
    await layOut(daemon.uri);
    const seq6 = await fio(daemon.uri, 'write', '1M', 8);
    const rw6 = await fio(daemon.uri, 'randwrite', '4k', 32);
    report({ id: 'nbd-raid6-seq-write', name: 'NBD 1M seq write QD8, RAID-6', figure: seq6.mbPerSecond, unit: 'MB/s', reference: { what: 'RAID-5 above', figure: seq5.mbPerSecond, unit: 'MB/s' } });
    report({ id: 'nbd-raid6-randwrite', name: 'NBD 4K randwrite QD32, RAID-6 atomic', figure: rw6.iops, unit: 'IOPS', reference: { what: 'RAID-5 above', figure: rw5.iops, unit: 'IOPS' } });
    await stop(daemon);
  } finally {
    for (const daemon of daemons) {
      try { process.kill(daemon.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    nbdkit?.kill();
    await nbdkit?.catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
};
