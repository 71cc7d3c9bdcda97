// Proves: zero-superblock erases jraid's metadata (the member is no longer jraid, create takes it
// without --force) and leaves the data area alone; and that a member carrying no superblock, a
// member of a served array, or one locked by another writer is refused with nothing written.
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT, errorLine, hashAll, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

/** sha256 of the bytes from `fromBytes` to the end: the data area. */
async function hashFrom(path: string, fromBytes: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.alloc(MIB);
    for (let at = fromBytes; ; at += buf.length) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`zero-superblock on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('erases the metadata, keeps the data, and the member can be reused', async () => {
      ws = workspace();
      const members = await backend.members(ws, 3, 12 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['write', 'r5', '--offset', '0'], { input: Buffer.alloc(256 * 1024, 7) })).exitCode).toBe(EXIT.OK);
      const dataBefore = await hashFrom(members[0]!, 4 * MIB);
      const result = await ws.run(['zero-superblock', members[0]!, '--json']);
      expect(result.exitCode).toBe(EXIT.OK);
      expect(readJson(result.stdout).zeroed).toMatchObject([{ name: 'r5', bytesZeroed: 4 * MIB }]);
      expect(await hashFrom(members[0]!, 4 * MIB)).toBe(dataBefore);
      const examined = await ws.run(['examine', members[0]!]);
      expect(errorLine(examined).code).toBe('E_MEMBER_NOT_JRAID');
      // The other two still make the array (degraded), and the erased member is free for a new one.
      expect((await ws.run(['detail', `${members[1]},${members[2]}`])).exitCode).toBe(EXIT.DEGRADED);
      const reused = await backend.members(ws, 2, 12 * MIB, 'n');
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '--assume-clean', members[0]!, ...reused])).exitCode).toBe(EXIT.OK);
    });

    it('refuses a path without a jraid superblock, and writes nothing to any member named', async () => {
      ws = workspace();
      const members = await backend.members(ws, 3, 12 * MIB);
      const [blank] = await backend.members(ws, 1, 12 * MIB, 'b');
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
      const before = await hashAll([...members, blank!]);
      const result = await ws.run(['zero-superblock', members[0]!, blank!]);
      expect(result.exitCode).toBe(EXIT.FAILED);
      expect(errorLine(result).code).toBe('E_MEMBER_NOT_JRAID');
      expect(result.stderr).toContain(blank!);
      expect(await hashAll([...members, blank!])).toEqual(before);
    });

    it('refuses a member of an array a daemon serves, and one another process holds', async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = await backend.members(ws, 3, 12 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
      const daemon = await startDaemon(ws, 'r5');
      pids.push(daemon.pid);
      const before = await hashAll(members);
      const served = await ws.run(['zero-superblock', members[1]!], { env });
      expect(served.exitCode).toBe(EXIT.FAILED);
      const served1 = errorLine(served);
      expect(served1.code).toBe('E_ARRAY_LOCKED');
      expect(served1.line).toContain(`daemon ${daemon.pid} serves`);
      // Without the daemon's registry (another run directory) the array lock still refuses it.
      const locked = await ws.run(['zero-superblock', members[1]!], { env: { ...env, JRAID_RUN_DIR: join(ws.dir, 'elsewhere') } });
      expect(locked.exitCode).toBe(EXIT.FAILED);
      expect(['E_ARRAY_LOCKED', 'E_MEMBER_BUSY']).toContain(errorLine(locked).code);
      // An idle daemon writes nothing: any change is the refused command's.
      expect(await hashAll(members)).toEqual(before);
      expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['examine', members[1]!])).exitCode).toBe(EXIT.OK);
    });
  });
}
