// `jraid examine --json` of one member, as a test reads it.

import { EXIT, readJson, type Workspace } from './cli.js';

export async function examine(ws: Workspace, path: string): Promise<{ superblock: { events: number; memberUuid: string; thisIndex: number; members: { number: number; uuid: string; role: number | null; state: string }[] } }> {
  const result = await ws.run(['examine', path, '--json']);
  if (result.exitCode !== EXIT.OK) throw new Error(`examine ${path} failed (${result.exitCode}): ${result.stderr}`);
  const parsed = readJson(result.stdout);
  return Array.isArray(parsed) ? parsed[0] : parsed;
}
