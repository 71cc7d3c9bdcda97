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
import { EXIT_OK, JraidError, isJraidError, type ErrorCode } from '../../errors.js';
import { configFor, intArg, outputFor, withCommonOptions, type CommonOptions } from '../options.js';
import { NBD_LIMITS_DEFAULT } from '../../daemon/nbd-server.js';
import { whileWaiting } from '../progress.js';

interface DaemonCliOptions extends CommonOptions {
  socket?: string;
  nbd: string[];
  toughness: string;
  foreground?: boolean;
  log?: string;
  logLevel: string;
  listenAny?: boolean;
  idleClean?: string;
  nbdConnectionsMax?: number;
  nbdHandshakeTimeout?: number;
}

const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];
const READY = 'JRAID-DAEMON-READY ';
const FAILED = 'JRAID-DAEMON-FAILED ';

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
    .option('--idle-clean <ms>', 'write a clean journal record after this long without writes', '3000')
    .option('--nbd-connections-max <count>', `NBD connections open at once (default ${NBD_LIMITS_DEFAULT.connectionsMax}): past it the oldest still negotiating is closed, or the newcomer refused`, intArg)
    .option('--nbd-handshake-timeout <ms>', `close an NBD client that has not finished its handshake after this long (default ${NBD_LIMITS_DEFAULT.handshakeTimeoutMs})`, intArg))
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
  for (const [flag, value] of [['--nbd-connections-max', options.nbdConnectionsMax], ['--nbd-handshake-timeout', options.nbdHandshakeTimeout]] as const) {
    if (value !== undefined && value < 1) throw new JraidError('E_USAGE', `${flag} must be at least 1`);
  }
  const nbdLimits = {
    ...(options.nbdConnectionsMax !== undefined ? { connectionsMax: options.nbdConnectionsMax } : {}),
    ...(options.nbdHandshakeTimeout !== undefined ? { handshakeTimeoutMs: options.nbdHandshakeTimeout } : {}),
  };
  if (!options.foreground) return startInBackground(spec, options);

  const child = process.env.JRAID_DAEMON_CHILD === '1';
  let file: WriteStream | undefined = options.log ? createWriteStream(options.log, { flags: 'a', mode: 0o600 }) : undefined;
  let toStderr = !file || child;
  // Lines logged before the log file is known (a background daemon learns its uuid by starting): kept for it.
  const early: string[] = [];
  const sink = { write: (line: string) => { if (toStderr) process.stderr.write(line); if (file) file.write(line); else if (child) early.push(line); return true; } };
  const both: Logger = makeLogger(options.logLevel, () => sink as unknown as NodeJS.WritableStream);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ spec, configFile: configFor(options), controlSocket: options.socket, nbd, toughness, logger: both, logFile: options.log ?? null, idleCleanMs, nbdLimits });
  } catch (error) {
    // The parent relays this line as the error, whatever else reached stderr.
    if (child) {
      const failure = isJraidError(error) ? error : new JraidError('E_DAEMON', `the daemon failed to start: ${(error as Error)?.message ?? String(error)}`);
      process.stdout.write(`${FAILED}${JSON.stringify({ code: failure.code, message: failure.message, path: failure.path, hint: failure.hint })}\n`);
    }
    throw error;
  }
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
  const ready = await whileWaiting(`starting the daemon for ${spec} (assembling, recovering when needed)`, out.progressAllowed, () => new Promise<{ pid: number; controlSocket: string; nbd: string[]; log: string } | undefined>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n').find((candidate) => candidate.startsWith(READY));
      if (line) resolve(JSON.parse(line.slice(READY.length)));
    });
    child.once('exit', () => resolve(undefined));
  }));
  if (!ready) {
    // The child said why, as one JSON line; failing that, its one error line on stderr.
    const failedLine = stdout.split('\n').find((candidate) => candidate.startsWith(FAILED));
    if (failedLine) {
      const failure = JSON.parse(failedLine.slice(FAILED.length)) as { code: ErrorCode; message: string; path?: string; hint?: string };
      throw new JraidError(failure.code, failure.message, { path: failure.path, hint: failure.hint });
    }
    const line = stderr.split('\n').filter((candidate) => candidate.startsWith('jraid: error: ')).pop();
    const code = line ? /\[(E_[A-Z_]+)\]$/.exec(line)?.[1] : undefined;
    throw new JraidError((code ?? 'E_DAEMON') as ErrorCode, line ? line.replace(/^jraid: error: /, '').replace(/ \[E_[A-Z_]+\]$/, '') : 'the daemon exited during start-up', {
      hint: line ? undefined : 'run it with --foreground to see why',
    });
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
