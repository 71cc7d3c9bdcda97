// Proves: README.md's quick starts run as written, with jraid on PATH as `npm link` puts it, in
// an empty directory: each prints "same" (the data read back is the data written) and exits 0.
// The loop-device one runs as root and leaves no loop device behind.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { JRAID_BIN, workspace, type Workspace } from '../helpers/cli.js';
import { loopSuiteEnabled } from '../helpers/loop.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

function quickStart(heading: string): string {
  const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.split(`## ${heading}`)[1]!.split('\n## ')[0]!;
  return /```sh\n([\s\S]*?)```/.exec(section)![1]!;
}

async function runAsWritten(script: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const env = { PATH: `${dirname(JRAID_BIN)}:${process.env.PATH}`, HOME: ws.dir };
  const result = await execa('bash', ['-euo', 'pipefail', '-c', script], { cwd: ws.dir, env, extendEnv: false, reject: false });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('README quick starts', () => {
  it('image files', async () => {
    ws = workspace();
    const result = await runAsWritten(quickStart('Quick start on image files'));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^same$/m);
    expect(result.stdout).toMatch(/State : clean/);
  });

  it.runIf(loopSuiteEnabled())('loop devices', async () => {
    ws = workspace();
    const result = await runAsWritten(quickStart('Quick start on loop devices (as root)'));
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^same$/m);
    const attached = (await execa('losetup', ['-j', ws.path('disk0.img')])).stdout.trim();
    expect(attached).toBe('');
  });
});
