// Proves: the config file and the daemon registry are replaced atomically (a reader polling
// while they are rewritten sees the old or the new text, never a part; no temporary file is
// left), with the mode asked for, and the file and its directory are fsynced (under strace).
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../src/files.js';
import { saveArrayToConfig } from '../../src/app/config.js';
import { requireTool } from '../helpers/tools.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic, durable replace', () => {
  it('a polling reader never sees a partial file; nothing is left behind', async () => {
    dir = mkdtempSync(join(tmpdir(), 'jraid-atomic-'));
    const path = join(dir, 'jraid.conf');
    const versions = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(4, '0')}\n${'x'.repeat(200_000 + i)}\n`);
    await writeFileAtomic(path, versions[0]!, 0o644);
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        const text = readFileSync(path, 'utf8');
        seen.add(text.slice(0, 4));
        expect(versions).toContain(text);
        await new Promise((done) => setImmediate(done));
      }
    })();
    for (const version of versions.slice(1)) await writeFileAtomic(path, version, 0o644);
    stop = true;
    await reader;
    expect(seen.size).toBeGreaterThan(1);
    expect(readFileSync(path, 'utf8')).toBe(versions[versions.length - 1]);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir)).toEqual(['jraid.conf']);
  });

  it.runIf(requireTool('strace'))('config writes fsync the file and the directory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'jraid-atomic-'));
    const config = join(dir, 'jraid.conf');
    const script = `import { saveArrayToConfig } from ${JSON.stringify(resolve(import.meta.dirname, '../../dist/src/app/config.js'))};
await saveArrayToConfig(${JSON.stringify(config)}, { name: 'r5', uuid: '2f0c1a2b-0000-4000-8000-000000000001', devices: ['/a.img', '/b.img', '/c.img'] });`;
    const traced = await execa('strace', ['-f', '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2,openat', 'node', '--input-type=module', '-e', script], { reject: false });
    expect(traced.exitCode, traced.stderr.slice(-2000)).toBe(0);
    const lines = traced.stderr.split('\n');
    const renameAt = lines.findIndex((line) => /rename(at2?)?\(.*jraid\.conf\.tmp-/.test(line) && line.includes('jraid.conf"'));
    expect(renameAt, 'renamed over the config file').toBeGreaterThan(0);
    const fsyncs = lines.map((line, index) => ({ line, index })).filter(({ line }) => /^(\[pid +\d+\] )?f(data)?sync\(/.test(line));
    expect(fsyncs.some(({ index }) => index < renameAt), 'the new file is fsynced before the rename').toBe(true);
    expect(fsyncs.some(({ index }) => index > renameAt), 'the directory is fsynced after the rename').toBe(true);
    expect(readFileSync(config, 'utf8')).toContain('ARRAY r5 UUID=2f0c1a2b-0000-4000-8000-000000000001 devices=/a.img,/b.img,/c.img');
    expect(saveArrayToConfig).toBeTypeOf('function');
  });
});
