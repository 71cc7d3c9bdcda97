// `daemon` serves an array (in the background unless --foreground); `stop` ends it cleanly.

import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Run } from '../run.js';
import { Daemon, describeNbdAddress, parseNbdAddress, type LogLevel, type Logger } from '../../daemon/daemon.js';
import { readStandby, waitAsStandby, type Takeover } from '../../daemon/standby.js';
import { parseToughness } from '../../daemon/array-backend.js';
import { findDaemon } from '../../daemon/control-client.js';
import { clusterNodeIds, daemonKey, runDir } from '../../daemon/registry.js';
import { EXIT_FAILED, EXIT_OK, JraidError, isJraidError, type ErrorCode } from '../../errors.js';
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
  standby?: boolean;
  cluster?: boolean;
  nodeId?: number;
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
    .option('--nbd-handshake-timeout <ms>', `close an NBD client that has not finished its handshake after this long (default ${NBD_LIMITS_DEFAULT.handshakeTimeoutMs})`, intArg)
    .option('--standby', 'wait while another daemon serves the array, and take it over (same addresses) when that one dies, stops or is paused')
    .option('--cluster', 'serve as one node of several on the same members, locking parity per stripe (the array needs create --cluster-nodes)')
    .option('--node-id <n>', 'with --cluster: this node\'s id, 0 to the array\'s cluster nodes - 1 (default 0); one daemon per id', intArg))
    .action((spec: string, options: DaemonCliOptions) => run(daemonCommand(spec, options)));
  withCommonOptions(program.command('stop')
    .description('stop the daemon serving an array: drain, flush, clean journal record, exit')
    .argument('<array>', 'NAME from the config file, or MEMBER,MEMBER,...')
    .option('--all', 'stop the standby daemon too (without it, the standby takes the array over); for a cluster, every node')
    .option('--node-id <n>', 'a cluster array: stop node N (default: the live node with the lowest id)', intArg))
    .action((spec: string, options: CommonOptions & { all?: boolean; nodeId?: number }) => run(stopCommand(spec, options)));
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
  if (options.nodeId !== undefined && !options.cluster) throw new JraidError('E_USAGE', '--node-id needs --cluster', { hint: 'add --cluster, or leave --node-id out' });
  if (options.cluster && options.standby) throw new JraidError('E_USAGE', '--cluster and --standby do not go together', { hint: 'every cluster node serves; a node that dies has its journal stripes resynced by the others' });
  const cluster = options.cluster ? { node: options.nodeId ?? 0 } : undefined;
  if (!options.foreground) return startInBackground(spec, options);

  const child = process.env.JRAID_DAEMON_CHILD === '1';
  let file: WriteStream | undefined = options.log ? createWriteStream(options.log, { flags: 'a', mode: 0o600 }) : undefined;
  let toStderr = !file || child;
  // Lines logged before the log file is known (a background daemon learns its uuid by starting): kept for it.
  const early: string[] = [];
  const sink = { write: (line: string) => { if (toStderr) process.stderr.write(line); if (file) file.write(line); else if (child) early.push(line); return true; } };
  const both: Logger = makeLogger(options.logLevel, () => sink as unknown as NodeJS.WritableStream);
  let daemon: Daemon;
  let announced = false;
  const announce = (uuid: string, ready: Record<string, unknown>) => {
    announced = true;
    if (!child) return;
    // The parent waits for this line, then exits: from here on only the log file is written.
    file ??= createWriteStream(join(runDir(), `${daemonKey(uuid, cluster?.node)}.log`), { flags: 'a', mode: 0o600 });
    for (const line of early.splice(0)) file.write(line);
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});
    process.stdout.write(`${READY}${JSON.stringify({ ...ready, log: file.path })}\n`);
    toStderr = false;
  };
  try {
    let takeover: Takeover | undefined;
    if (options.standby) {
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, onSignal);
      try {
        takeover = await waitAsStandby({
          spec, configFile: configFor(options), controlSocket: options.socket, nbd: nbd.map(describeNbdAddress), signal: abort.signal,
          log: (message) => both('info', message),
          onRegistered: (record) => announce(record.uuid, { pid: process.pid, standby: true, controlSocket: record.controlSocket, nbd: record.nbd, members: record.members }),
        });
      } catch (error) {
        if (!abort.signal.aborted) throw error;
        both('info', 'standby: stopped before it took over');
        await new Promise<void>((resolve) => (file ? file.end(resolve) : resolve()));
        return EXIT_OK;
      } finally {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) process.off(signal, onSignal);
      }
    }
    daemon = await Daemon.start({ spec, configFile: configFor(options), controlSocket: options.socket, nbd, toughness, logger: both, logFile: options.log ?? null, idleCleanMs, nbdLimits, takeover, cluster });
  } catch (error) {
    // The parent relays this line as the error, whatever else reached stderr.
    if (child) {
      const failure = isJraidError(error) ? error : new JraidError('E_DAEMON', `the daemon failed to start: ${(error as Error)?.message ?? String(error)}`);
      process.stdout.write(`${FAILED}${JSON.stringify({ code: failure.code, message: failure.message, path: failure.path, hint: failure.hint })}\n`);
    }
    throw error;
  }
  if (!announced) announce(daemon.assembled.report.arrayUuid, { pid: process.pid, controlSocket: daemon.controlSocket, nbd: daemon.addresses });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void daemon.stop(signal));
  await daemon.done;
  await new Promise<void>((resolve) => (file ? file.end(resolve) : resolve()));
  // Fenced: exit at once, without closing anything (closing a Unix listener would unlink the new primary's socket path).
  if (daemon.fencedReason) process.exit(EXIT_FAILED);
  return EXIT_OK;
}

/** Re-runs this command with --foreground, detached; returns once it reports ready (or failed). */
async function startInBackground(spec: string, options: DaemonCliOptions): Promise<number> {
  const out = outputFor(options);
  // The same entry this process runs (the bundle bin/jraid starts, or main.js).
  const args = [process.argv[1]!, ...process.argv.slice(2), '--foreground'];
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
  if ((ready as { standby?: boolean }).standby) {
    out.result({ spec, ...ready }, () => `jraid: standby daemon ${ready.pid} waits to take ${spec} over\n  NBD: ${ready.nbd.join(' ') || '(the default)'}\n  control: ${ready.controlSocket ?? '(the default)'}\n  log: ${ready.log}`);
    return EXIT_OK;
  }
  out.result({ spec, ...ready }, () => `jraid: daemon ${ready.pid} serves ${spec}\n  NBD: ${ready.nbd.join(' ')}\n  control: ${ready.controlSocket}\n  log: ${ready.log}`);
  return EXIT_OK;
}

async function stopCommand(spec: string, options: CommonOptions & { all?: boolean; nodeId?: number }): Promise<number> {
  const out = outputFor(options);
  const daemon = await findDaemon(spec, configFor(options), options.nodeId);
  if (!daemon) throw new JraidError('E_DAEMON', `no daemon serves ${spec}${options.nodeId !== undefined ? ` as node ${options.nodeId}` : ''}`, { hint: 'start one with jraid daemon' });
  if (daemon.record.node !== undefined && options.all && options.nodeId === undefined) {
    // A cluster: every node, one after the other (each closes its own journal area cleanly).
    daemon.close();
    const stopped: number[] = [];
    for (const node of await clusterNodeIds(daemon.record.uuid)) {
      const each = await findDaemon(spec, configFor(options), node);
      if (!each) continue;
      const pid = each.record.pid;
      try {
        await each.call('stop');
      } finally {
        each.close();
      }
      await waitGone(pid, each.record.log);
      stopped.push(pid);
    }
    out.result({ stopped: true, pid: stopped[0] ?? daemon.record.pid, standbyStopped: null, standbyTakesOver: null, nodesStopped: stopped }, () => `jraid: cluster node daemon(s) ${stopped.join(', ')} stopped; their journal areas were closed cleanly`);
    return EXIT_OK;
  }
  const pid = daemon.record.pid;
  const standby = await readStandby(daemon.record.uuid);
  // The standby goes first: stopped second, it would take the array over from the primary.
  if (standby && options.all) await stopStandby(standby.pid);
  try {
    await daemon.call('stop');
  } finally {
    daemon.close();
  }
  for (let waited = 0; waited < 60_000; waited += 50) {
    try {
      process.kill(pid, 0);
    } catch {
      const takesOver = standby && !options.all ? standby.pid : null;
      out.result({ stopped: true, pid, standbyStopped: standby && options.all ? standby.pid : null, standbyTakesOver: takesOver }, () => `jraid: daemon ${pid} stopped; the array was closed cleanly${takesOver !== null ? `; standby daemon ${takesOver} takes it over` : standby ? `; standby daemon ${standby.pid} stopped too` : ''}`);
      return EXIT_OK;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new JraidError('E_DAEMON', `daemon ${pid} did not exit within 60 s`, { hint: `see its log${daemon.record.log ? ` (${daemon.record.log})` : ''}` });
}

async function waitGone(pid: number, log: string | null): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 50) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new JraidError('E_DAEMON', `daemon ${pid} did not exit within 60 s`, { hint: `see its log${log ? ` (${log})` : ''}` });
}

/** Ends a waiting standby (SIGTERM: it removes its record and exits without touching the array). */
async function stopStandby(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  for (let waited = 0; waited < 10_000; waited += 20) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new JraidError('E_DAEMON', `standby daemon ${pid} did not exit within 10 s`, { hint: `kill ${pid}, then jraid stop again` });
}
