// Proves: one writer at a time: a second writer (or reader) fails at once, naming the holder.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync, statSync } from 'node:fs';
import { EXIT, JRAID_BIN, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

/** Waits until /proc/locks shows a write lock on `path`'s inode (or block device). */
async function waitForWriteLock(path: string): Promise<void> {
  // /proc/locks names the locked file by device and inode: for a block device, its node in /dev.
  const inode = `:${statSync(path).ino} `;
  for (let attempt = 0; attempt < 200; attempt++) {
    const locks = readFileSync('/proc/locks', 'utf8');
    const found = locks.split('\n').some((line) => line.includes('WRITE') && line.includes(inode));
    if (found) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no write lock appeared on ${path}`);
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`two writers on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('the second writer fails at once and names the first', async () => {
      ws = workspace();
      const members = await backend.members(ws, 3, 16 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      // The first writer holds the lock while it waits for the rest of its stdin.
      const first = execa(JRAID_BIN, ['write', spec, '--offset', '0'], { reject: false, stdin: 'pipe', env: { JRAID_CONFIG: ws.config } });
      first.stdin!.write('first writer ');
      await waitForWriteLock(members[0]!);
      const started = Date.now();
      const second = await ws.run(['write', spec, '--offset', '4096'], { input: 'second' });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(second.exitCode).toBe(EXIT.FAILED);
      expect(second.stderr).toContain('[E_ARRAY_LOCKED]');
      expect(second.stderr).toContain(`${members[0]} is in use by pid ${first.pid} (jraid write `);
      const reader = await ws.run(['read', spec, '--offset', '0', '--length', '10', '--output', ws.path('out')]);
      expect(reader.exitCode).toBe(EXIT.FAILED);
      expect(reader.stderr).toContain('[E_ARRAY_LOCKED]');
      const detail = await ws.run(['detail', spec]);
      expect(detail.exitCode).toBe(EXIT.OK);
      first.stdin!.end('done');
      expect((await first).exitCode).toBe(EXIT.OK);
      const back = await ws.run(['read', spec, '--offset', '0', '--length', '17', '--output', ws.path('out')]);
      expect(back.exitCode).toBe(EXIT.OK);
      expect(readFileSync(ws.path('out'), 'utf8')).toBe('first writer done');
    });
  });
}
