// `jraid monitor`: report array events with mdadm --monitor's names, and run --program for each.

import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { collectStatus, type ArrayStatus } from '../../daemon/array-status.js';
import type { MonitorEvent } from '../../daemon/monitor-events.js';
import { firstLook, watch } from '../../daemon/monitor-watch.js';
import { EXIT_OK, JraidError } from '../../errors.js';
import { configFor, intArg, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import type { Output } from '../output.js';

interface MonitorCliOptions extends CommonOptions {
  program?: string;
  oneshot?: boolean;
  test?: boolean;
  delay: number;
}

export function registerMonitor(program: Command, run: Run): void {
  withCommonOptions(program.command('monitor')
    .description('report array events (Fail, DegradedArray, RebuildStarted, ...) as mdadm --monitor does; run --program for each')
    .argument('[array...]', 'the arrays to watch (default: every array in the config file or served by a daemon)')
    .option('-p, --program <cmd>', 'run CMD EVENT ARRAY [MEMBER] for each event; a program that fails ends the monitor')
    .option('-1, --oneshot', 'look once (DegradedArray for each degraded array) and exit')
    .option('-t, --test', 'report a TestMessage for each array first')
    .option('-d, --delay <seconds>', 'how often arrays without a daemon are looked at (default 60)', intArg, 60))
    .action((names: string[], options: MonitorCliOptions) => run(monitorCommand(names, options)));
}

/** The program must be runnable before the monitor starts: found on PATH (or by its path) and executable. */
async function resolveProgram(command: string): Promise<string> {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  throw new JraidError('E_PROGRAM', `--program ${command} is not an executable file${command.includes('/') ? '' : ' on PATH'}`, { path: command, hint: 'give the path of an executable program' });
}

/** Runs the program with the event, array and member, as mdadm does; a failure is an error. */
function runProgram(program: string, monitorEvent: MonitorEvent): Promise<void> {
  const args = [monitorEvent.event, monitorEvent.array, ...(monitorEvent.member ? [monitorEvent.member] : [])];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.once('error', (error: NodeJS.ErrnoException) => reject(new JraidError('E_PROGRAM', `--program ${program} could not run for ${monitorEvent.event}: ${error.code ?? error.message}`, { path: program })));
    child.once('exit', (code, signal) => {
      if (code === 0) return resolvePromise();
      reject(new JraidError('E_PROGRAM', `--program ${program} ${signal ? `was killed by ${signal}` : `exited ${code}`} for ${monitorEvent.event} ${args.slice(1).join(' ')}`, {
        path: program, hint: 'fix the program (it is run as PROGRAM EVENT ARRAY [MEMBER]); the monitor stopped so that no event goes unhandled',
      }));
    });
  });
}

function printer(out: Output, program: string | undefined): (monitorEvent: MonitorEvent) => Promise<void> {
  return async (monitorEvent) => {
    out.line(monitorEvent, () => `${monitorEvent.time} ${monitorEvent.event} ${monitorEvent.array}${monitorEvent.member ? ` ${monitorEvent.member}` : ''}: ${monitorEvent.message}`);
    if (program) await runProgram(program, monitorEvent);
  };
}

async function monitorCommand(names: string[], options: MonitorCliOptions): Promise<number> {
  const out = outputFor(options);
  if (options.delay < 1) throw new JraidError('E_USAGE', '--delay must be at least 1 second');
  const program = options.program !== undefined ? await resolveProgram(options.program) : undefined;
  const configFile = configFor(options);
  const initial = await collectStatus(configFile, names);
  if (initial.length === 0) {
    throw new JraidError('E_ARRAY_UNKNOWN', `nothing to monitor: ${configFile} lists no arrays and no daemon runs`, { path: configFile, hint: 'name arrays, or add them to the config file' });
  }
  const emit = printer(out, program);
  const testMessages = (statuses: ArrayStatus[]): MonitorEvent[] => statuses.map((status) => ({
    event: 'TestMessage', array: status.name, uuid: status.uuid ?? '', member: null, time: new Date().toISOString(), message: `test message for ${status.name} (${status.state})`,
  }));
  // mdadm order: test messages, then what the first look finds; when following, once the
  // daemons' event streams are live, so that an event after the first line is never missed.
  const firstLines = async () => {
    for (const monitorEvent of [...(options.test ? testMessages(initial) : []), ...initial.flatMap(firstLook)]) await emit(monitorEvent);
  };
  if (options.oneshot) {
    await firstLines();
    return EXIT_OK;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await watch(initial, { configFile, names, delayMs: options.delay * 1000, emit, signal: stop.signal, onReady: firstLines });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return EXIT_OK;
}
