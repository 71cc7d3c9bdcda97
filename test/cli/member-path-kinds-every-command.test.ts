// Proves: every command given a member path of each bad kind (missing, directory, FIFO, character
// device, symlink loop, path through a file, unreadable, zero length, truncated, foreign, rolled
// back) answers with one error line with a code and the documented exit code, never a stack trace
// or a hang, and leaves every member's bytes as they were; a rolled-back member is named stale.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, NOBODY_UID, errorLine, hashAll, makeImages, workspace, type CliResult, type Workspace } from '../helpers/cli.js';
import { isRoot } from '../helpers/loop.js';
import { MIB } from '../../src/units.js';

type Kind = 'missing' | 'directory' | 'fifo' | 'char-device' | 'symlink-loop' | 'through-a-file' | 'unreadable'
  | 'zero-length' | 'truncated' | 'foreign' | 'rolled-back';

type Command = 'create' | 'assemble' | 'detail' | 'examine' | 'write' | 'read' | 'scrub' | 'recover' | 'fail-disk'
  | 'rebuild' | 're-add' | 'add' | 'daemon';

const COMMANDS: Command[] = ['create', 'assemble', 'detail', 'examine', 'read', 'scrub', 'recover', 'fail-disk', 'rebuild', 'add', 're-add', 'write', 'daemon'];

/** The code a command gives for a member of each kind (documented in jraid(8), EXIT STATUS and ERRORS). */
const CODE_BY_KIND: Record<Exclude<Kind, 'rolled-back'>, string> = {
  missing: 'E_MEMBER_MISSING',
  directory: 'E_MEMBER_IS_DIRECTORY',
  fifo: 'E_MEMBER_NOT_BLOCK_OR_FILE',
  'char-device': 'E_MEMBER_NOT_BLOCK_OR_FILE',
  'symlink-loop': 'E_MEMBER_BAD_PATH',
  'through-a-file': 'E_MEMBER_BAD_PATH',
  unreadable: 'E_PERMISSION',
  'zero-length': 'E_MEMBER_NOT_JRAID',
  truncated: 'E_MEMBER_CORRUPT',
  foreign: 'E_MIXED_ARRAYS',
};

/** Where a command sees the path differently: as a new member (create, add) or one member alone (examine). */
const OVERRIDES: Partial<Record<Command, Partial<Record<Kind, string | 'ok'>>>> = {
  create: { 'zero-length': 'E_MEMBER_TOO_SMALL', truncated: 'E_MEMBER_FOREIGN', foreign: 'E_MEMBER_FOREIGN', 'rolled-back': 'E_MEMBER_FOREIGN' },
  add: { 'zero-length': 'E_MEMBER_TOO_SMALL', truncated: 'E_MEMBER_TOO_SMALL', foreign: 'E_MEMBER_FOREIGN', 'rolled-back': 'E_MEMBER_FOREIGN' },
  examine: { foreign: 'ok', 'rolled-back': 'ok' },
};

let ws: Workspace;

interface Rig {
  members: string[];
  fresh: string[];
  foreign: string[];
  payload: Buffer;
  bad: string;
  /** Every file whose bytes must not change. */
  watched: string[];
}

/** A RAID-5 array a,b,c with data, a second array, fresh images, and a copy of c from before the last write. */
async function rig(): Promise<Omit<Rig, 'bad' | 'watched'>> {
  ws = workspace();
  const members = await makeImages(ws, ['a.img', 'b.img', 'c.img'], 6 * MIB);
  const fresh = await makeImages(ws, ['f0.img', 'f1.img'], 6 * MIB);
  const foreign = await makeImages(ws, ['x0.img', 'x1.img', 'x2.img'], 6 * MIB);
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'walk', ...members])).exitCode).toBe(EXIT.OK);
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'other', ...foreign])).exitCode).toBe(EXIT.OK);
  const spec = members.join(',');
  writeFileSync(ws.path('first'), randomBytes(256 * 1024));
  expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('first')])).exitCode).toBe(EXIT.OK);
  copyFileSync(members[2]!, ws.path('rolled.img')); // c as it was before the next write
  const payload = randomBytes(MIB);
  writeFileSync(ws.path('payload'), payload);
  expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('payload')])).exitCode).toBe(EXIT.OK);
  return { members, fresh, foreign, payload };
}

function withBadPath(base: Omit<Rig, 'bad' | 'watched'>, kind: Kind): Rig {
  const bad = makeBadPath(kind, base.members, base.foreign);
  return { ...base, bad, watched: [...base.members, ...base.fresh, ...base.foreign, ws.path('rolled.img'), ...(isFile(kind) ? [bad] : [])] };
}

function isFile(kind: Kind): boolean {
  return ['unreadable', 'zero-length', 'truncated', 'foreign', 'rolled-back'].includes(kind);
}

function makeBadPath(kind: Kind, members: string[], foreign: string[]): string {
  switch (kind) {
    case 'missing': return ws.path('nowhere.img');
    case 'directory': mkdirSync(ws.path('dir')); return ws.path('dir');
    case 'fifo': execFileSync('mkfifo', [ws.path('fifo')]); return ws.path('fifo');
    case 'char-device': return '/dev/null';
    case 'symlink-loop': symlinkSync(ws.path('loop-b'), ws.path('loop-a')); symlinkSync(ws.path('loop-a'), ws.path('loop-b')); return ws.path('loop-a');
    case 'through-a-file': return join(members[0]!, 'inside.img');
    case 'unreadable': copyFileSync(members[2]!, ws.path('locked.img')); chmodSync(ws.path('locked.img'), 0o000); return ws.path('locked.img');
    case 'zero-length': writeFileSync(ws.path('empty.img'), ''); return ws.path('empty.img');
    case 'truncated': copyFileSync(members[2]!, ws.path('short.img')); truncateSync(ws.path('short.img'), 5 * MIB); return ws.path('short.img');
    case 'foreign': return foreign[2]!;
    case 'rolled-back': return ws.path('rolled.img');
  }
}

function argsFor(command: Command, r: Rig): string[] {
  const [a, b, c] = r.members;
  const spec = `${a},${b},${r.bad}`;
  switch (command) {
    case 'create': return ['create', '-l', '5', '-n', '3', '-c', '64K', ...r.fresh, r.bad];
    case 'assemble': return ['assemble', a!, b!, r.bad];
    case 'detail': return ['detail', spec];
    case 'examine': return ['examine', r.bad];
    case 'write': return ['write', spec, '-o', '0', '-i', ws.path('payload')];
    case 'read': return ['read', spec, '-o', '0', '-l', '64K', '--output', ws.path('out')];
    case 'scrub': return ['scrub', spec];
    case 'recover': return ['recover', spec];
    case 'fail-disk': return ['fail-disk', spec, a!];
    case 'rebuild': return ['rebuild', spec];
    case 're-add': return ['re-add', spec, r.bad];
    case 'add': return ['add', `${a},${b},${c}`, r.bad];
    case 'daemon': return ['daemon', spec];
  }
}

async function run(command: Command, r: Rig, kind: Kind): Promise<CliResult> {
  const env = { JRAID_RUN_DIR: ws.path('run') };
  return ws.run(argsFor(command, r), { env, timeoutMs: 30_000, ...(kind === 'unreadable' ? { asUid: NOBODY_UID } : {}) });
}

const KINDS = Object.keys(CODE_BY_KIND) as Exclude<Kind, 'rolled-back'>[];
const REFUSED_BEFORE_OPENING: ReadonlySet<Kind> = new Set(['missing', 'directory', 'fifo', 'char-device', 'symlink-loop', 'through-a-file', 'unreadable']);

describe('every command refuses a bad member path with one line, a code and no writes', () => {
  // One rig for every kind: none of these commands may change a byte of it.
  let base: Omit<Rig, 'bad' | 'watched'> | undefined;
  afterAll(() => ws?.cleanup());
  for (const kind of KINDS) {
    it.runIf(kind !== 'unreadable' || isRoot)(`${kind}`, async () => {
      base ??= await rig();
      const r = withBadPath(base, kind);
      if (kind === 'unreadable') {
        // Run as nobody (root reads anything): the rest of the rig must be usable by nobody.
        chmodSync(ws.dir, 0o777);
        for (const path of [...r.members, ...r.fresh, ...r.foreign, ws.path('payload')]) chmodSync(path, 0o666);
      }
      const before = await hashAll(r.watched);
      // None of them may write. Refused before anything is opened, they run side by side; the
      // others open and lock members before they refuse, so they run one at a time.
      const results: { command: Command; result: CliResult }[] = [];
      if (REFUSED_BEFORE_OPENING.has(kind)) {
        results.push(...await Promise.all(COMMANDS.map(async (command) => ({ command, result: await run(command, r, kind) }))));
      } else {
        for (const command of COMMANDS) results.push({ command, result: await run(command, r, kind) });
      }
      for (const { command, result } of results) {
        const expected = OVERRIDES[command]?.[kind] ?? CODE_BY_KIND[kind];
        const label = `${command} with a ${kind} member: ${result.stderr}`;
        if (expected === 'ok') {
          expect(result.exitCode, label).toBe(EXIT.OK);
          expect(result.stderr, label).not.toMatch(/\n\s+at |internal error/);
        } else {
          expect(result.exitCode, label).toBe(EXIT.FAILED);
          expect(errorLine(result).code, label).toBe(expected);
        }
      }
      expect(await hashAll(r.watched), `a command given a ${kind} member changed a member's bytes`).toEqual(before);
    });
  }
});

describe('a rolled-back member is named stale by every command and never read', () => {
  afterAll(() => ws?.cleanup());
  it('read-only and refused commands write nothing; write, daemon and re-add run degraded', async () => {
    const r = withBadPath(await rig(), 'rolled-back');
    const before = await hashAll(r.watched);
    const expectations: [Command, number, string | RegExp][] = [
      ['create', EXIT.FAILED, 'E_MEMBER_FOREIGN'],
      ['add', EXIT.FAILED, 'E_MEMBER_FOREIGN'],
      ['examine', EXIT.OK, /Events/],
      ['assemble', EXIT.DEGRADED, /rolled\.img.*stale/],
      ['detail', EXIT.DEGRADED, /stale/],
      ['read', EXIT.DEGRADED, /read 65536 bytes/],
      ['scrub', EXIT.FAILED, 'E_ARRAY_DEGRADED'],
      ['recover', EXIT.DEGRADED, /nothing to recover/],
      ['fail-disk', EXIT.FAILED, 'E_REFUSED'],
      ['rebuild', EXIT.FAILED, 'E_NO_SPARE'],
    ];
    for (const [command, exitCode, outcome] of expectations) {
      const result = await run(command, r, 'rolled-back');
      const label = `${command} with a rolled-back member: ${result.stdout}${result.stderr}`;
      expect(result.exitCode, label).toBe(exitCode);
      if (typeof outcome === 'string') expect(errorLine(result).code, label).toBe(outcome);
      else expect(result.stdout + result.stderr, label).toMatch(outcome);
      expect(result.stderr, label).not.toMatch(/\n\s+at |internal error/);
      expect(await hashAll(r.watched), label).toEqual(before);
    }
    // The stale member is left out of reads: the bytes are the newest ones.
    expect(readFileSync(ws.path('out')).equals(r.payload.subarray(0, 64 * 1024))).toBe(true);
    const spec = `${r.members[0]},${r.members[1]},${r.bad}`;
    const env = { JRAID_RUN_DIR: ws.path('run') };
    const started = await run('daemon', r, 'rolled-back');
    expect(started.exitCode, started.stderr).toBe(EXIT.OK);
    const viaDaemon = await ws.run(['detail', spec], { env });
    expect(viaDaemon.exitCode, viaDaemon.stdout).toBe(EXIT.DEGRADED);
    expect(viaDaemon.stdout).toMatch(/stale/);
    expect((await ws.run(['stop', spec], { env })).exitCode).toBe(EXIT.OK);
    const write = await run('write', r, 'rolled-back');
    expect(write.exitCode, write.stderr).toBe(EXIT.DEGRADED);
    const reAdd = await run('re-add', r, 'rolled-back');
    expect(reAdd.exitCode, reAdd.stderr).toBe(EXIT.OK);
    const detail = await ws.run(['detail', spec]);
    expect(detail.exitCode, detail.stdout).toBe(EXIT.OK);
    const scrub = await ws.run(['scrub', spec, '--json']);
    expect(JSON.parse(scrub.stdout).mismatchCount).toBe(0);
  });
});
