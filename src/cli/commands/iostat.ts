// `jraid iostat ARRAY [INTERVAL [COUNT]]`: live I/O figures from the serving daemon, as
// zpool iostat -v prints them: the first report covers the time since the daemon started, each
// later one the last INTERVAL seconds.

import type { Command } from 'commander';
import type { Run } from '../run.js';
import { findDaemon } from '../../daemon/control-client.js';
import type { IoCounters, IoSample } from '../../daemon/io-stats.js';
import { resolveArraySpec } from '../../app/open.js';
import { EXIT_OK, JraidError } from '../../errors.js';
import { configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { table } from '../output.js';

export interface IoRates {
  readsPerSecond: number;
  writesPerSecond: number;
  readBytesPerSecond: number;
  writeBytesPerSecond: number;
  readLatencyMsMean: number | null;
  writeLatencyMsMean: number | null;
}

export interface IoReport {
  array: string;
  intervalSeconds: number;
  total: IoRates;
  members: ({ number: number; path: string; role: number | null; state: string } & IoRates)[];
  journalRecordsPerSecond: number;
}

export function registerIostat(program: Command, run: Run): void {
  withCommonOptions(program.command('iostat')
    .description('I/O per second for the array and each member, from the daemon serving it (as zpool iostat -v)')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .argument('[interval]', 'seconds between reports (default: one report since the daemon started)')
    .argument('[count]', 'reports to print (default: until interrupted, when INTERVAL is given)'))
    .action((spec: string, interval: string | undefined, count: string | undefined, options: CommonOptions) => run(iostatCommand(spec, interval, count, options)));
}

function wholeNumber(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new JraidError('E_USAGE', `${what} "${text}" is not a whole number of at least 1`, { hint: 'jraid iostat ARRAY [INTERVAL [COUNT]]' });
  return Number(text);
}

function rates(before: IoCounters | undefined, after: IoCounters, seconds: number): IoRates {
  const base = before ?? { reads: 0, writes: 0, readBytes: 0, writtenBytes: 0, readMs: 0, writeMs: 0 };
  const reads = after.reads - base.reads;
  const writes = after.writes - base.writes;
  const per = (value: number) => Math.round((100 * value) / seconds) / 100;
  return {
    readsPerSecond: per(reads), writesPerSecond: per(writes),
    readBytesPerSecond: Math.round((after.readBytes - base.readBytes) / seconds), writeBytesPerSecond: Math.round((after.writtenBytes - base.writtenBytes) / seconds),
    readLatencyMsMean: reads > 0 ? Math.round((1000 * (after.readMs - base.readMs)) / reads) / 1000 : null,
    writeLatencyMsMean: writes > 0 ? Math.round((1000 * (after.writeMs - base.writeMs)) / writes) / 1000 : null,
  };
}

/** The report between two samples (or since counting began, with no earlier sample). */
export function report(name: string, before: IoSample | undefined, after: IoSample): IoReport {
  const seconds = Math.max(0.001, (after.atMs - (before?.atMs ?? after.sinceMs)) / 1000);
  return {
    array: name,
    intervalSeconds: Math.round(seconds * 1000) / 1000,
    total: rates(before?.array, after.array, seconds),
    members: after.members.map((member) => ({
      number: member.number, path: member.path, role: member.role, state: member.state,
      ...rates(before?.members.find((old) => old.uuid === member.uuid), member, seconds),
    })),
    journalRecordsPerSecond: Math.round((100 * (after.journalRecords - (before?.journalRecords ?? 0))) / seconds) / 100,
  };
}

function formatReport(io: IoReport): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
  const ms = (value: number | null) => (value === null ? '-' : value.toFixed(3));
  const row = (label: string, r: IoRates) => [label, r.readsPerSecond.toFixed(1), r.writesPerSecond.toFixed(1), mb(r.readBytesPerSecond), mb(r.writeBytesPerSecond), ms(r.readLatencyMsMean), ms(r.writeLatencyMsMean)];
  const rows = [row(io.array, io.total), ...io.members.map((member) => row(`  ${member.path} (${member.state})`, member))];
  return `${table(['', 'reads/s', 'writes/s', 'read MB/s', 'write MB/s', 'read ms', 'write ms'], rows)}\n  journal: ${io.journalRecordsPerSecond.toFixed(1)} records/s over ${io.intervalSeconds.toFixed(1)} s`;
}

async function iostatCommand(spec: string, intervalText: string | undefined, countText: string | undefined, options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const intervalSeconds = wholeNumber(intervalText, 'INTERVAL');
  const count = wholeNumber(countText, 'COUNT');
  // An unknown array is named as such, before looking for its daemon.
  await resolveArraySpec(spec, configFor(options));
  const daemon = await findDaemon(spec, configFor(options));
  if (!daemon) {
    throw new JraidError('E_DAEMON', `no daemon serves ${spec}: iostat reports the I/O a daemon serves`, { hint: `start one with jraid daemon ${spec}` });
  }
  const print = (io: IoReport) => out.line(io, () => `${formatReport(io)}\n`);
  let stopped = false;
  let wake: (() => void) | undefined;
  const onSignal = () => { stopped = true; wake?.(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let previous: IoSample | undefined;
    const reports = intervalSeconds === undefined ? 1 : count ?? Infinity;
    for (let printed = 0; printed < reports && !stopped; printed++) {
      if (printed > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalSeconds! * 1000);
          wake = () => { clearTimeout(timer); resolve(); };
        });
      }
      if (stopped) break;
      const sample = (await daemon.call<IoSample>('iostat')).result;
      print(report(spec, previous, sample));
      previous = sample;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    daemon.close();
  }
  return EXIT_OK;
}
