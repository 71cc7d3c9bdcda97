// Starting and stopping jraid daemons in tests, each in its own run directory.

import { execa } from 'execa';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { JRAID_BIN, type Workspace } from './cli.js';

export function daemonEnv(ws: Workspace): Record<string, string> {
  return { JRAID_RUN_DIR: join(ws.dir, 'run'), JRAID_CONFIG: ws.config };
}

export async function startDaemon(ws: Workspace, spec: string, extra: string[] = [], env: Record<string, string> = {}): Promise<{ pid: number; nbd: string; controlSocket: string; log: string }> {
  const result = await execa(JRAID_BIN, ['daemon', spec, '--json', ...extra], { reject: false, env: { ...daemonEnv(ws), ...env } });
  if (result.exitCode !== 0) throw new Error(`daemon did not start (${result.exitCode}): ${result.stderr}`);
  const ready = JSON.parse(result.stdout) as { pid: number; nbd: string[]; controlSocket: string; log: string };
  return { pid: ready.pid, nbd: ready.nbd[0]!, controlSocket: ready.controlSocket, log: ready.log };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitForExit(pid: number, timeoutMs = 30_000): Promise<void> {
  for (let waited = 0; waited < timeoutMs; waited += 50) {
    if (!alive(pid)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`process ${pid} did not exit`);
}

export function daemonLog(ws: Workspace): string {
  const dir = join(ws.dir, 'run');
  return readdirSync(dir).filter((name) => name.endsWith('.log')).map((name) => readFileSync(join(dir, name), 'utf8')).join('');
}
