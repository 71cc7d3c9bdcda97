// Proves: the package ships the man page (package.json "man", so `man jraid` works after
// npm install -g), docs/JSON.md with its schema, and the systemd unit template; the unit passes
// systemd-analyze verify, and its ExecStart serves the array named by the instance and stops
// cleanly on SIGTERM (KillSignal); the man page renders without warnings and speaks to admins
// (no source-document jargon).
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { copyFileSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXIT, JRAID_BIN, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { daemonEnv } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';
import { requireTool } from '../helpers/tools.js';

const root = resolve(import.meta.dirname, '../..');
const unit = readFileSync(resolve(root, 'systemd/jraid@.service'), 'utf8');
let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('shipped with the package', () => {
  it.runIf(requireTool('man'))('man page, JSON docs and the unit template are in the package; the man page renders cleanly', async () => {
    const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8'));
    expect(pkg.man).toEqual(['./man/jraid.8']);
    const packed = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root });
    const files = (JSON.parse(packed.stdout)[0].files as { path: string }[]).map((file) => file.path);
    for (const path of ['man/jraid.8', 'docs/JSON.md', 'docs/jraid.schema.json', 'systemd/jraid@.service', 'bin/jraid']) expect(files).toContain(path);
    const man = await execa('man', ['--warnings', '-l', resolve(root, 'man/jraid.8')], { env: { MANWIDTH: '100', MAN_KEEP_FORMATTING: '0' }, reject: false });
    expect(man.stderr).toBe('');
    // Bold and underline as a terminal pager gets them (overstrikes) out, as col -b does.
    // eslint-disable-next-line no-control-regex
    const text = man.stdout.replace(/.\x08/g, '');
    for (const section of ['status', 'monitor', 'iostat', 'replace', 'zero-superblock', 'SYSTEMD', 'MONITOR EVENTS', 'SHELL COMPLETION']) expect(text).toContain(section);
    expect(text).not.toMatch(/\bseeds? \d{3}/i);
  });

  it.runIf(requireTool('systemd-analyze'))('the unit verifies', async () => {
    ws = workspace();
    const instance = ws.path('jraid@r5.service');
    copyFileSync(resolve(root, 'systemd/jraid@.service'), instance);
    const verified = await execa('systemd-analyze', ['verify', instance], { reject: false, cwd: ws.dir });
    // The only complaint allowed: man:jraid(8) is not installed on this machine.
    const complaints = verified.stderr.split('\n').filter((line) => line.trim() && !/man jraid\(8\)/.test(line));
    expect(complaints).toEqual([]);
  });

  it('ExecStart serves the instance, and SIGTERM stops it cleanly', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
    const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/);
    expect(execStart.slice(0, 2)).toEqual(['/usr/bin/env', 'jraid']);
    expect(/^KillSignal=SIGTERM$/m.test(unit)).toBe(true);
    const args = execStart.slice(2).map((word) => word.replace('%i', 'r5'));
    const env = daemonEnv(ws);
    const daemon = execa(JRAID_BIN, args, { env, reject: false });
    let served = false;
    for (let waited = 0; waited < 30_000 && !served; waited += 100) {
      const status = await ws.run(['status', 'r5', '--json'], { env });
      served = readJson(status.stdout).arrays[0]?.daemon?.pid === daemon.pid;
      if (!served) await new Promise((done) => setTimeout(done, 100));
    }
    expect(served).toBe(true);
    daemon.kill('SIGTERM');
    const ended = await daemon;
    expect(ended.exitCode).toBe(0);
    expect(String(ended.stderr)).toMatch(/closed cleanly/);
  });
});
