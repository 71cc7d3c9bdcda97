// Proves: read, detail, examine and scrub (without --repair) open members read-only and write
// nothing, even when a primary superblock copy is damaged (they use the secondary and say a
// writing command repairs it); they work on read-only loop devices and on members an
// unprivileged user may only read, where writing commands fail with one line (E_PERMISSION).
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { EXIT, NOBODY_UID, errorLine, hashAll, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { detachLoop, isRoot, loopSuiteEnabled } from '../helpers/loop.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
const loops: string[] = [];
afterEach(async () => {
  for (const loop of loops.splice(0)) await detachLoop(loop);
  ws?.cleanup();
});

/** Breaks the primary superblock copy's checksum (the secondary at 4 KiB stays whole). */
function damagePrimary(path: string): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from('garbage!'), 0, 8, 200);
  closeSync(fd);
}

async function arrayWithData(names: string[]): Promise<{ members: string[]; payload: Buffer }> {
  const members = await makeImages(ws, names, 8 * MIB);
  expect((await ws.run(['create', '-l', '5', '-n', String(names.length), '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
  const payload = randomBytes(MIB);
  writeFileSync(ws.path('payload'), payload);
  expect((await ws.run(['write', members.join(','), '-o', '0', '-i', ws.path('payload')])).exitCode).toBe(EXIT.OK);
  return { members, payload };
}

/** Runs every read-only command on `spec` and checks it works, writing nothing to `watched`. */
async function readOnlyCommandsWork(spec: string, examined: string, watched: string[], payload: Buffer, asUid?: number): Promise<void> {
  const before = await hashAll(watched);
  const options = asUid === undefined ? {} : { asUid };
  const output = ws.path(`back-${asUid ?? 'root'}`);
  const read = await ws.run(['read', spec, '-o', '0', '-l', '1M', '--output', output], options);
  expect(read.exitCode, read.stderr).toBe(EXIT.OK);
  expect(readFileSync(output).equals(payload)).toBe(true);
  const detail = await ws.run(['detail', spec, '--json'], options);
  expect(detail.exitCode, detail.stderr).toBe(EXIT.OK);
  expect(readJson(detail.stdout).state).toBe('clean');
  const examine = await ws.run(['examine', examined], options);
  expect(examine.exitCode, examine.stderr).toBe(EXIT.OK);
  const scrub = await ws.run(['scrub', spec, '--json'], options);
  expect(scrub.exitCode, scrub.stderr).toBe(EXIT.OK);
  expect(readJson(scrub.stdout).mismatchCount).toBe(0);
  expect(await hashAll(watched)).toEqual(before);
}

describe('read-only commands on image files', () => {
  it('write nothing with a damaged primary copy, say a writing command repairs it, and assemble does', async () => {
    ws = workspace();
    const { members, payload } = await arrayWithData(['a', 'b', 'c', 'd']);
    damagePrimary(members[1]!);
    const spec = members.join(',');
    await readOnlyCommandsWork(spec, members[1]!, members, payload);
    const read = await ws.run(['read', spec, '-o', '0', '-l', '4K', '--output', ws.path('back')]);
    expect(read.stderr).toMatch(/b: primary superblock is bad .*using the secondary copy; a writing command \(jraid assemble\) rewrites it/);
    expect(readJson((await ws.run(['detail', spec, '--json'])).stdout).notes.join('\n')).toMatch(/b: primary superblock is bad/);
    const assemble = await ws.run(['assemble', ...members]);
    expect(assemble.exitCode).toBe(EXIT.OK);
    expect(assemble.stderr).toMatch(/b: primary superblock is bad .*rewritten/);
    const examined = readJson((await ws.run(['examine', members[1]!, '--json'])).stdout);
    expect(examined.examined[0].primaryProblem).toBeNull();
  });

  it.runIf(isRoot)('as an unprivileged user: members of mode 0444 are read; writes and mode 000 fail with E_PERMISSION', async () => {
    ws = workspace();
    const { members, payload } = await arrayWithData(['a', 'b', 'c']);
    chmodSync(ws.dir, 0o777);
    for (const member of members) chmodSync(member, 0o444);
    const spec = members.join(',');
    await readOnlyCommandsWork(spec, members[0]!, members, payload, NOBODY_UID);
    const before = await hashAll(members);
    for (const args of [['write', spec, '-o', '0', '-i', ws.path('payload')], ['scrub', spec, '--repair'], ['assemble', ...members], ['recover', spec]]) {
      const result = await ws.run(args, { asUid: NOBODY_UID });
      expect(result.exitCode, args.join(' ')).toBe(EXIT.FAILED);
      const { code, line } = errorLine(result);
      expect(code).toBe('E_PERMISSION');
      expect(line).toMatch(/cannot open .*a for writing: permission denied/);
    }
    chmodSync(members[2]!, 0o000);
    const locked = await ws.run(['read', spec, '-o', '0', '-l', '4K', '--output', ws.path('back-nobody')], { asUid: NOBODY_UID });
    expect(locked.exitCode).toBe(EXIT.FAILED);
    expect(errorLine(locked).line).toMatch(/cannot open .*c for reading: permission denied/);
    expect(await hashAll(members)).toEqual(before);
  });
});

describe.runIf(loopSuiteEnabled())('read-only commands on read-only loop devices (losetup -r)', () => {
  it('work and write nothing with a damaged primary copy; writing commands fail with one line', async () => {
    ws = workspace();
    const { members, payload } = await arrayWithData(['a', 'b', 'c', 'd']);
    for (const member of members) damagePrimary(member);
    for (const member of members) loops.push((await execa('losetup', ['-f', '--show', '-r', member])).stdout.trim());
    const spec = loops.join(',');
    await readOnlyCommandsWork(spec, loops[0]!, members, payload);
    const before = await hashAll(members);
    for (const args of [['write', spec, '-o', '0', '-i', ws.path('payload')], ['assemble', ...loops]]) {
      const result = await ws.run(args);
      expect(result.exitCode, args.join(' ')).toBe(EXIT.FAILED);
      const { code, line } = errorLine(result);
      expect(code).toBe('E_PERMISSION');
      expect(line).toMatch(/is read-only/);
    }
    expect(await hashAll(members)).toEqual(before);
  });
});
