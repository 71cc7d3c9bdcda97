// Proves: a writer starting while lock-free readers (detail, status, monitor) probe the members
// with a momentary shared lock is not refused with E_ARRAY_LOCKED; a writer that really holds
// the array still is.
import { afterEach, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { EXIT, errorLine, workspace, type Workspace } from '../helpers/cli.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let prober: ChildProcess | undefined;

afterEach(() => {
  prober?.kill('SIGKILL');
  prober = undefined;
  ws?.cleanup();
});

/** A process that, like `jraid detail`, takes a shared lock on each member's first block for 3 ms out of every 5 ms. */
function startProber(paths: string[], holdMs: number, gapMs: number): Promise<ChildProcess> {
  const fsx = createRequire(import.meta.url).resolve('fs-native-extensions');
  const script = `
    const fsx = require(${JSON.stringify(fsx)});
    const fs = require('fs');
    const fds = ${JSON.stringify(paths)}.map((p) => fs.openSync(p, 'r'));
    const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    process.stdout.write('ready\\n');
    for (;;) {
      for (const fd of fds) fsx.tryLock(fd, 0, 4096, { shared: true });
      sleep(${holdMs});
      for (const fd of fds) fsx.unlock(fd, 0, 4096);
      sleep(${gapMs});
    }`;
  const file = ws.path('prober.cjs');
  writeFileSync(file, script);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => child.stdout!.once('data', () => resolve(child)));
}

it('writes succeed while a prober takes momentary shared locks; a held lock still refuses', async () => {
  ws = workspace();
  const members = ['a', 'b', 'c'].map((name) => ws.path(`${name}.img`));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-z', String((16 * MIB) / 1024), '-N', 'pr', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  writeFileSync(ws.path('in.bin'), Buffer.alloc(64 * 1024, 0x5a));

  prober = await startProber(members, 3, 2);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const write = await ws.run(['write', 'pr', '-o', String(attempt * 64 * 1024), '-i', ws.path('in.bin')]);
    expect(write.exitCode, write.stderr).toBe(EXIT.OK);
  }
  prober.kill('SIGKILL');

  // A holder that does not let go: refused, naming it.
  prober = await startProber(members, 60_000, 0);
  const refused = await ws.run(['write', 'pr', '-o', '0', '-i', ws.path('in.bin')]);
  expect(refused.exitCode).toBe(EXIT.FAILED);
  expect(errorLine(refused).code).toBe('E_ARRAY_LOCKED');
  expect(errorLine(refused).line).toContain(`pid ${prober.pid}`);
});
