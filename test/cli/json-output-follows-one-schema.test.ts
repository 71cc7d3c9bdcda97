// Proves: every command's --json output, on success and on failure (parse errors included), is
// valid against the one documented schema (docs/jraid.schema.json, docs/JSON.md) under ajv, and
// every command jraid --help lists is exercised both ways; the schema is strict enough to reject
// the old, inconsistent field names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Ajv from 'ajv';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { execa } from 'execa';
import { EXIT, JRAID_BIN, makeImages, workspace, type CliResult, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

const schema = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../docs/jraid.schema.json'), 'utf8'));
const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

let ws: Workspace;
let env: Record<string, string>;
const pids: number[] = [];
const covered = { ok: new Set<string>(), failed: new Set<string>() };

function documents(stdout: string): unknown[] {
  const text = stdout.trim();
  if (!text) return [];
  // One pretty-printed document, or one document per line (monitor, iostat).
  return text.startsWith('{\n') ? [JSON.parse(text)] : text.split('\n').map((line) => JSON.parse(line));
}

/** Runs a command with --json, validates every document it prints, and records the outcome. */
async function check(command: string, args: string[], expectOk: boolean): Promise<CliResult> {
  const result = await ws.run([command, ...args, '--json'], { env });
  const docs = documents(result.stdout);
  expect(docs.length, `${command} ${args.join(' ')} printed a document: ${result.stderr}`).toBeGreaterThan(0);
  for (const doc of docs) {
    const valid = validate(doc);
    expect(valid, `${command} ${args.join(' ')}: ${JSON.stringify(validate.errors?.filter((e) => e.keyword !== 'if').slice(0, 3))}\n${JSON.stringify(doc)}`).toBe(true);
    expect((doc as { command: string }).command).toBe(command);
  }
  expect(result.exitCode === EXIT.FAILED || result.exitCode === EXIT.USAGE, `${command} ${args.join(' ')} exit ${result.exitCode}: ${result.stderr}`).toBe(!expectOk);
  // A failure is the error document, or (commands that take several members) an error per member.
  const errorDoc = docs.some((doc) => (doc as { error?: unknown }).error);
  const perItem = docs.some((doc) => ((doc as { examined?: { error: unknown }[] }).examined ?? []).some((entry) => entry.error) || ((doc as { errors?: unknown[] }).errors ?? []).length > 0);
  expect(errorDoc || perItem, `${command} ${args.join(' ')} reports an error`).toBe(!expectOk);
  (expectOk ? covered.ok : covered.failed).add(command);
  return result;
}

beforeAll(async () => {
  ws = workspace();
  env = daemonEnv(ws);
});

afterAll(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  ws?.cleanup();
});

describe('--json follows docs/jraid.schema.json', () => {
  it('every command, success and failure', async () => {
    const m = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img', 'm3.img', 'm4.img', 'm5.img', 'm6.img', 'm7.img'], 12 * MIB);
    const [small] = await makeImages(ws, ['small.img'], 6 * MIB);
    writeFileSync(ws.path('data'), randomBytes(256 * 1024));
    await check('create', ['-l', '5', '-n', '3', '-x', '1', '-c', '64K', '-N', 'r5', '--save-config', m[0]!, m[1]!, m[2]!, m[3]!], true);
    await check('create', ['-l', '5', '-n', '3', m[0]!], false);
    await check('assemble', ['--readonly', m[0]!, m[1]!, m[2]!, m[3]!], true);
    await check('assemble', ['--scan', '--readonly'], true);
    await check('assemble', [small!], false);
    await check('detail', ['r5'], true);
    await check('detail', ['--scan'], true);
    await check('detail', ['nosuch'], false);
    await check('examine', [m[0]!], true);
    await check('examine', ['--scan', m[0]!, m[1]!], true);
    await check('examine', [ws.path('missing.img')], false);
    await check('write', ['r5', '--offset', '0', '--input', ws.path('data')], true);
    await check('write', ['r5', '--offset', String(1024 * MIB), '--input', ws.path('data')], false);
    await check('read', ['r5', '--offset', '0', '--length', '4096', '--output', ws.path('out')], true);
    await check('read', ['r5', '--offset', '0'], false);
    await check('scrub', ['r5'], true);
    await check('scrub', ['nosuch'], false);
    await check('recover', ['r5'], true);
    await check('recover', ['nosuch'], false);
    await check('replace', ['r5', m[0]!, '--with', m[4]!], true);
    await check('replace', ['r5', m[1]!, '--with', m[1]!], false);
    await check('fail-disk', ['r5', m[1]!], true);
    await check('fail-disk', ['r5', m[7]!], false);
    await check('rebuild', ['r5'], true);
    await check('rebuild', ['r5', '--replacement', small!], false);
    await check('remove', ['r5', m[1]!], true);
    await check('remove', ['r5', m[2]!], false);
    await check('add', ['r5', m[5]!], true);
    await check('add', ['r5', small!], false);
    await check('zero-superblock', [m[1]!], true);
    await check('zero-superblock', [m[1]!], false);
    // re-add: a member that left and comes back.
    const spec = `${m[2]},${m[3]},${m[4]}`;
    expect((await ws.run(['fail-disk', 'r5', m[2]!], { env })).exitCode).toBe(EXIT.DEGRADED);
    await check('re-add', [spec, m[2]!], false); // named without it among the paths: refused
    await check('re-add', [`${m[0]},${m[2]},${m[3]},${m[4]},${m[5]}`, m[2]!], true);
    await check('status', [], true);
    await check('status', ['nosuch'], false);
    await check('monitor', ['--oneshot', '--test'], true);
    await check('monitor', ['--oneshot', '--program', ws.path('no-such-program')], false);
    await check('iostat', ['r5'], false);
    await check('stop', ['r5'], false);
    await check('daemon', ['r5'], true);
    const record = JSON.parse((await ws.run(['status', '--json'], { env })).stdout).arrays[0].daemon;
    pids.push(record.pid);
    await check('daemon', ['r5'], false);
    await check('iostat', ['r5', '1', '2'], true);
    await check('detail', ['r5'], true); // through the daemon: with its pid and addresses
    await check('status', [], true);
    await check('stop', ['r5'], true);
    // completion prints a shell script, not JSON: only its refusal is a JSON document.
    await check('completion', ['fish'], false);
    covered.ok.add('completion');
    // Parse errors: the command is named when known, null when not.
    await check('create', ['--levle', '5'], false);
    const unknown = await execa(JRAID_BIN, ['frobnicate', '--json'], { reject: false, env });
    const [doc] = documents(unknown.stdout);
    expect(validate(doc)).toBe(true);
    expect(doc).toMatchObject({ schemaVersion: 1, command: null, error: { code: 'E_USAGE' } });

    const help = (await ws.run(['--help'])).stdout;
    const listed = [...help.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((match) => match[1]!).filter((name) => name !== 'help');
    expect(listed.length).toBeGreaterThan(15);
    for (const name of listed) {
      expect(covered.ok.has(name), `${name} checked on success`).toBe(true);
      expect(covered.failed.has(name), `${name} checked on failure`).toBe(true);
    }
  });

  it('rejects the old names: arrayState, index, a member as a bare string, a missing schemaVersion', () => {
    const failDisk = { schemaVersion: 1, command: 'fail-disk', events: 4, degraded: true, member: { path: '/a.img', role: 1, state: 'faulty' }, state: 'degraded' };
    expect(validate(failDisk)).toBe(true);
    expect(validate({ ...failDisk, state: undefined, arrayState: 'degraded' })).toBe(false);
    expect(validate({ ...failDisk, member: '/a.img' })).toBe(false);
    const { schemaVersion: _drop, ...unversioned } = failDisk;
    expect(validate(unversioned)).toBe(false);
    const outcome = { number: 3, path: '/n.img', role: 1, mode: 'full', resumedFromBytes: 0, stripesRebuilt: 1, bytesWritten: 65536, seconds: 0.1 };
    const rebuild = { schemaVersion: 1, command: 'rebuild', state: 'clean', degraded: false, rebuilt: [outcome], lostRoles: [], memberPaths: ['/n.img'], hint: null };
    expect(validate(rebuild)).toBe(true);
    const { number: _number, ...withoutNumber } = outcome;
    expect(validate({ ...rebuild, rebuilt: [{ ...withoutNumber, index: 3 }] })).toBe(false);
    expect(validate({ ...rebuild, memberPaths: ['n.img'] })).toBe(false); // relative path
  });
});
