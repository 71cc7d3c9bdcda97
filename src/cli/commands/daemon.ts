// `daemon` serves an array (in the background unless --foreground); `stop` ends it cleanly.

import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { Daemon, parseNbdAddress, type LogLevel, type Logger } from '../../daemon/daemon.js';
import { parseToughness } from '../../daemon/array-backend.js';
import { findDaemon } from '../../daemon/control-client.js';
import { runDir } from '../../daemon/registry.js';
import { EXIT_OK, JraidError } from '../../errors.js';
import { configFor, outputFor, withCommonOptions, type CommonOptions } from '../options.js';

interface DaemonCliOptions extends CommonOptions {
  socket?: string;
  nbd: string[];
  toughness: string;
  foreground?: boolean;
  log?: string;
  logLevel: string;
  listenAny?: boolean;
  idleClean?: string;
}

const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];
const READY = 'JRAID-DAEMON-READY ';

export function registerDaemon(program: Command, run: Run): void {
  withCommonOptions(program.command('daemon')
    .description('serve an array: NBD export, control socket for the CLI, batched journal flushes')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .option('--socket <path>', 'control socket (default $JRAID_RUN_DIR/<uuid>.sock)')
    .option('--nbd <address>', 'NBD listen address: unix:PATH or tcp:HOST:PORT (repeatable; default unix:$JRAID_RUN_DIR/<name>.nbd)', (value: string, all: string[]) => [...all, value], [] as string[])
    .option('--toughness <level>', 'when writes are acknowledged: durable, atomic or fast', 'durable')
    .option('--foreground', 'stay in the foreground, logging to stderr (or --log)')
    .option('--log <file>', 'log file (default in the background: $JRAID_RUN_DIR/<uuid>.log)')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .option('--listen-any', 'allow --nbd tcp: on a non-loopback address')
    .option('--idle-clean <ms>', 'write a clean journal record after this long without writes', '3000'))
    .action((spec: string, options: DaemonCliOptions) => run(daemonCommand(spec, options)));
  withCommonOptions(program.command('stop')
    .description('stop the daemon serving an array: drain, flush, clean journal record, exit')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...'))
    .action((spec: string, options: CommonOptions) => run(stopCommand(spec, options)));
}

function makeLogger(level: string, stream: () => NodeJS.WritableStream | undefined): Logger {
  const threshold = LEVELS.indexOf(level as LogLevel);
  if (threshold < 0) throw new JraidError('E_USAGE', `unknown log level "${level}"`, { hint: `use ${LEVELS.join(', ')}` });
  return (messageLevel, message) => {
    if (LEVELS.indexOf(messageLevel) < threshold) return;
    stream()?.write(`${new Date().toISOString()} ${messageLevel.padEnd(5)} ${message}\n`);
  };
}

async function daemonCommand(spec: string, options: DaemonCliOptions): Promise<number> {
  const toughness = parseToughness(options.toughness);
  const nbd = options.nbd.map((address) => parseNbdAddress(address, !!options.listenAny));
  const idleCleanMs = Number(options.idleClean);
  if (!Number.isInteger(idleCleanMs) || idleCleanMs < 0) throw new JraidError('E_USAGE', `--idle-clean "${options.idleClean}" is not a number of milliseconds`);
  if (!options.foreground) return startInBackground(spec, options);

  const child = process.env.JRAID_DAEMON_CHILD === '1';
  let file: WriteStream | undefined = options.log ? createWriteStream(options.log, { flags: 'a', mode: 0o600 }) : undefined;
  let toStderr = !file || child;
  // Lines logged before the log file is known (a background daemon learns its uuid by starting): kept for it.
  const early: string[] = [];
  const sink = { write: (line: string) => { if (toStderr) process.stderr.write(line); if (file) file.write(line); else if (child) early.push(line); return true; } };
  const both: Logger = makeLogger(options.logLevel, () => sink as unknown as NodeJS.WritableStream);
  const daemon = await Daemon.start({ spec, configFile: configFor(options), controlSocket: options.socket, nbd, toughness, logger: both, logFile: options.log ?? null, idleCleanMs });
  if (child) {
    // The parent waits for this line, then exits: from here on only the log file is written.
    file ??= createWriteStream(join(runDir(), `${daemon.assembled.report.arrayUuid}.log`), { flags: 'a', mode: 0o600 });
    for (const line of early.splice(0)) file.write(line);
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});
    process.stdout.write(`${READY}${JSON.stringify({ pid: process.pid, controlSocket: daemon.controlSocket, nbd: daemon.addresses, log: file.path })}\n`);
    toStderr = false;
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void daemon.stop(signal));
  await daemon.done;
  await new Promise<void>((resolve) => (file ? file.end(resolve) : resolve()));
  return EXIT_OK;
}

/** Re-runs this command with --foreground, detached; returns once it reports ready (or failed). */
async function startInBackground(spec: string, options: DaemonCliOptions): Promise<number> {
  const out = outputFor(options);
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const args = [main, ...process.argv.slice(2), '--foreground'];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, JRAID_DAEMON_CHILD: '1' } });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const ready = await new Promise<{ pid: number; controlSocket: string; nbd: string[]; log: string } | undefined>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((candidate) => candidate.startsWith(READY));
      if (line) resolve(JSON.parse(line.slice(READY.length)));
    });
    child.once('exit', () => resolve(undefined));
  });
  if (!ready) {
    // The child printed its error (one line, with its code) on stderr: pass it on.
    const line = stderr.trim().split('\n').filter(Boolean).pop() ?? 'the daemon exited during start-up';
    const code = /\[(E_[A-Z_]+)\]$/.exec(line)?.[1] ?? 'E_DAEMON';
    throw new JraidError(code as 'E_DAEMON', line.replace(/^jraid: error: /, '').replace(/ \[E_[A-Z_]+\]$/, ''));
  }
  child.stdout!.destroy();
  child.stderr!.destroy();
  child.unref();
  out.result({ spec, ...ready }, () => `jraid: daemon ${ready.pid} serves ${spec}\n  NBD: ${ready.nbd.join(' ')}\n  control: ${ready.controlSocket}\n  log: ${ready.log}`);
  return EXIT_OK;
}

async function stopCommand(spec: string, options: CommonOptions): Promise<number> {
  const out = outputFor(options);
  const daemon = await findDaemon(spec, configFor(options));
  if (!daemon) throw new JraidError('E_DAEMON', `no daemon serves ${spec}`, { hint: 'start one with jraid daemon' });
  const pid = daemon.record.pid;
  try {
    await daemon.call('stop');
  } finally {
    daemon.close();
  }
  for (let waited = 0; waited < 60_000; waited += 50) {
    try {
      process.kill(pid, 0);
    } catch {
      out.result({ stopped: true, pid }, () => `jraid: daemon ${pid} stopped; the array was closed cleanly`);
      return EXIT_OK;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new JraidError('E_DAEMON', `daemon ${pid} did not exit within 60 s`, { hint: `see its log${daemon.record.log ? ` (${daemon.record.log})` : ''}` });
}
