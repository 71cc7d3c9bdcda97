// `jraid examine --json` of one member, as a test reads it.

import { EXIT, readJson, type Workspace } from './cli.js';

export async function examine(ws: Workspace, path: string): Promise<{ superblock: { events: number; memberUuid: string; number: number; members: { number: number; memberUuid: string; role: number | null; state: string }[] } }> {
  const result = await ws.run(['examine', path, '--json']);
  if (result.exitCode !== EXIT.OK) throw new Error(`examine ${path} failed (${result.exitCode}): ${result.stderr}`);
  const parsed = readJson(result.stdout);
  return parsed.examined[0];
}
