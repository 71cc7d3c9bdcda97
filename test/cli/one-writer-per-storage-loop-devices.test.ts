// Proves: one writer per array whatever its members are called: a writer through loop devices
// and one through the image files behind them (either first), or through two loop devices over
// the same files, exclude each other with E_ARRAY_LOCKED naming the holder; so do create,
// assemble and a second daemon; and a file and its loop device are one member (duplicate).
import { afterEach, describe, expect, it } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, JRAID_BIN, errorLine, hashAll, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { daemonEnv, startDaemon, waitForExit } from '../helpers/daemon.js';
import { detachLoop, loopSuiteEnabled } from '../helpers/loop.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
const loops: string[] = [];
const holders: ResultPromise[] = [];
afterEach(async () => {
  // Any daemon a failing run left serving (its registry files name it).
  for (const dir of ['run', 'run2']) {
    for (const name of existsSync(ws.path(dir)) ? readdirSync(ws.path(dir)).filter((file) => file.endsWith('.json')) : []) {
      try { process.kill((JSON.parse(readFileSync(join(ws.path(dir), name), 'utf8')) as { pid: number }).pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  for (const holder of holders.splice(0)) {
    holder.kill('SIGKILL');
    await holder.catch(() => {});
  }
  for (const loop of loops.splice(0)) await detachLoop(loop);
  ws?.cleanup();
});

async function attach(files: string[]): Promise<string[]> {
  const attached: string[] = [];
  for (const file of files) {
    const { stdout } = await execa('losetup', ['-f', '--show', file]);
    attached.push(stdout.trim());
    loops.push(stdout.trim());
  }
  return attached;
}

/** Waits until /proc/locks shows a write lock on `path`'s inode. */
async function waitForWriteLock(path: string): Promise<void> {
  const inode = `:${statSync(path).ino} `;
  for (let attempt = 0; attempt < 400; attempt++) {
    if (readFileSync('/proc/locks', 'utf8').split('\n').some((line) => line.includes('WRITE') && line.includes(inode))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no write lock appeared on ${path}`);
}

/**
 * A writer that holds the array (its lock is taken before it reads stdin, which stays open).
 * Wrapped: an async function returning the subprocess (a thenable) would wait for it to exit.
 */
async function holdingWriter(members: string[]): Promise<{ writer: ResultPromise }> {
  const writer = execa(JRAID_BIN, ['write', members.join(','), '--offset', '0'], { reject: false, stdin: 'pipe', env: { JRAID_CONFIG: ws.config } });
  holders.push(writer);
  await waitForWriteLock(members[0]!);
  return { writer };
}

async function expectLockedOut(args: string[], holderPid: number, watched: string[], env: Record<string, string> = {}): Promise<void> {
  const before = await hashAll(watched);
  const started = Date.now();
  const result = await ws.run(args, { env });
  expect(Date.now() - started, args.join(' ')).toBeLessThan(10_000);
  expect(result.exitCode, `${args.join(' ')}: ${result.stderr}`).toBe(EXIT.FAILED);
  const { code, line } = errorLine(result);
  expect(code).toBe('E_ARRAY_LOCKED');
  expect(line).toContain(`is in use by pid ${holderPid} (jraid `);
  expect(await hashAll(watched)).toEqual(before);
}

describe.runIf(loopSuiteEnabled())('one writer per array, whatever its members are called', () => {
  async function setup(): Promise<{ files: string[]; loopsA: string[] }> {
    ws = workspace();
    const files = await makeImages(ws, ['a.img', 'b.img', 'c.img', 'd.img'], 16 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', ...files])).exitCode).toBe(EXIT.OK);
    return { files, loopsA: await attach(files) };
  }

  it('a writer through the files locks out writers through loop devices over them, and create and assemble', async () => {
    const { files, loopsA } = await setup();
    const { writer: holder } = await holdingWriter(files);
    await expectLockedOut(['write', loopsA.join(','), '-o', '4096', '-i', files[0]!], holder.pid!, files);
    expect(errorLine(await ws.run(['write', loopsA.join(','), '-o', '0', '-i', files[0]!])).line).toMatch(/\/dev\/loop\d+ \(backed by .*a\.img\) is in use/);
    await expectLockedOut(['assemble', ...loopsA], holder.pid!, files);
    await expectLockedOut(['create', '-l', '5', '-n', '4', '--force', '--assume-clean', ...loopsA], holder.pid!, files);
    holder.stdin!.end('done');
    expect((await holder).exitCode).toBe(EXIT.OK);
  });

  it('a writer through loop devices locks out writers through the files, and through other loop devices over them', async () => {
    const { files, loopsA } = await setup();
    const loopsB = await attach(files);
    const { writer: holder } = await holdingWriter(loopsA);
    await expectLockedOut(['write', files.join(','), '-o', '4096', '-i', files[0]!], holder.pid!, files);
    await expectLockedOut(['write', loopsB.join(','), '-o', '4096', '-i', files[0]!], holder.pid!, files);
    await expectLockedOut(['recover', loopsB.join(',')], holder.pid!, files);
    holder.stdin!.end('done');
    expect((await holder).exitCode).toBe(EXIT.OK);
  });

  it('a second daemon through other names is refused, naming the first', async () => {
    const { files, loopsA } = await setup();
    const env = daemonEnv(ws);
    const daemon = await startDaemon(ws, files.join(','));
    // Another run directory: the second daemon cannot find the first's registry, only its lock.
    const otherEnv = { ...env, JRAID_RUN_DIR: ws.path('run2') };
    await expectLockedOut(['daemon', loopsA.join(',')], daemon.pid, files, otherEnv);
    expect((await ws.run(['stop', files.join(',')], { env })).exitCode).toBe(EXIT.OK);
    await waitForExit(daemon.pid);
  });

  it('a file and a loop device over it are the same member', async () => {
    const { files, loopsA } = await setup();
    const before = await hashAll(files);
    for (const args of [
      ['assemble', files[0]!, files[1]!, files[2]!, loopsA[0]!],
      ['create', '-l', '5', '-n', '4', '--force', files[0]!, files[1]!, files[2]!, loopsA[0]!],
    ]) {
      const result = await ws.run(args);
      expect(result.exitCode, result.stderr).toBe(EXIT.FAILED);
      expect(errorLine(result).code).toBe('E_MEMBER_DUPLICATE');
    }
    expect(await hashAll(files)).toEqual(before);
  });
});
