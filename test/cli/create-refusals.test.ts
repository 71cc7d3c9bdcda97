// Proves: every bad create is refused with its code, exit status and message, and writes nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { EXIT, hashAll, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

async function expectRefused(args: string[], members: string[], code: string, exitCode: number, message: RegExp): Promise<void> {
  const before = await hashAll(members);
  const result = await ws.run(['create', ...args, ...members]);
  expect(result.exitCode).toBe(exitCode);
  expect(result.stderr).toContain(`[${code}]`);
  expect(result.stderr).toMatch(message);
  expect(result.stdout).toBe('');
  expect(await hashAll(members)).toEqual(before);
}

describe('create refuses bad input on image files', () => {
  it('too few members for the level', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 16 * MIB);
    await expectRefused(['-l', '6', '-n', '3'], members, 'E_TOO_FEW_MEMBERS', EXIT.USAGE, /RAID-6 needs at least 4 raid devices/);
    await expectRefused(['-l', '5', '-n', '2'], members.slice(0, 2), 'E_TOO_FEW_MEMBERS', EXIT.USAGE, /RAID-5 needs at least 3/);
  });

  it('member count not matching --raid-devices', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 16 * MIB);
    await expectRefused(['-l', '5', '-n', '4'], members, 'E_TOO_FEW_MEMBERS', EXIT.USAGE, /need 4 member paths, got 3/);
  });

  it('the same path twice, and one file under two names', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 16 * MIB);
    await expectRefused(['-l', '5', '-n', '4'], [...members, members[0]!], 'E_MEMBER_DUPLICATE', EXIT.FAILED, /are the same file/);
    symlinkSync(members[1]!, ws.path('alias'));
    await expectRefused(['-l', '5', '-n', '4'], [...members, ws.path('alias')], 'E_MEMBER_DUPLICATE', EXIT.FAILED, /alias and .*b are the same file/);
  });

  it('a member too small', async () => {
    ws = workspace();
    const members = [...await makeImages(ws, ['a', 'b'], 16 * MIB), ...await makeImages(ws, ['tiny'], 4 * MIB)];
    await expectRefused(['-l', '5', '-n', '3'], members, 'E_MEMBER_TOO_SMALL', EXIT.FAILED, /tiny is 4.00 MiB; a member needs at least/);
  });

  it('a member of another array, unless --force', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 16 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-N', 'first', ...members])).exitCode).toBe(EXIT.OK);
    const fresh = await makeImages(ws, ['d', 'e'], 16 * MIB);
    await expectRefused(['-l', '5', '-n', '3'], [...fresh, members[1]!], 'E_MEMBER_FOREIGN', EXIT.FAILED, /b already belongs to array first \(uuid [0-9a-f-]{36}\).*--force/);
    const forced = await ws.run(['create', '-l', '5', '-n', '3', '--force', ...fresh, members[1]!]);
    expect(forced.exitCode).toBe(EXIT.OK);
  });

  it('a missing path without --size, creating no file', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b'], 16 * MIB);
    await expectRefused(['-l', '5', '-n', '3'], [...members, ws.path('nope.img')], 'E_MEMBER_MISSING', EXIT.FAILED, /nope.img does not exist.*--size/);
    expect(existsSync(ws.path('nope.img'))).toBe(false);
  });

  it('a directory, creating none of the other files', async () => {
    ws = workspace();
    mkdirSync(ws.path('dir'));
    await expectRefused(['-l', '5', '-n', '3', '--size', '16M'], [ws.path('x.img'), ws.path('y.img'), ws.path('dir')], 'E_MEMBER_IS_DIRECTORY', EXIT.FAILED, /dir is a directory/);
    expect(existsSync(ws.path('x.img'))).toBe(false);
  });

  it('a chunk that is not a power of two from 4K to 64M', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 16 * MIB);
    for (const chunk of ['48K', '2K', '128M', '3000']) {
      await expectRefused(['-l', '5', '-n', '3', '--chunk', chunk], members, 'E_BAD_CHUNK', EXIT.USAGE, /is not a power of two from 4K to 64M/);
    }
    const junk = await ws.run(['create', '-l', '5', '-n', '3', '--chunk', 'lots', ...members]);
    expect(junk.exitCode).toBe(EXIT.USAGE);
    expect(junk.stderr).toMatch(/"lots" is not a size/);
  });

  it('an unknown level or layout', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c', 'd'], 16 * MIB);
    await expectRefused(['-l', '7', '-n', '4'], members, 'E_BAD_LEVEL', EXIT.USAGE, /unknown level "7"/);
    await expectRefused(['-l', '5', '-n', '4', '--layout', 'zigzag'], members, 'E_BAD_LAYOUT', EXIT.USAGE, /layout "zigzag" is not a RAID-5 layout/);
    await expectRefused(['-l', '5', '-n', '4', '--layout', 'parity-last'], members, 'E_BAD_LAYOUT', EXIT.USAGE, /use one of: left-symmetric/);
    await expectRefused(['-l', '5', '-n', '4', '--consistency-policy', 'yolo'], members, 'E_BAD_POLICY', EXIT.USAGE, /unknown consistency policy "yolo"/);
  });

  it('hostile names and missing options', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 16 * MIB);
    await expectRefused(['-l', '5', '-n', '3', '-N', 'bad name; rm -rf /'], members, 'E_USAGE', EXIT.USAGE, /array name/);
    const noLevel = await ws.run(['create', '-n', '3', ...members]);
    expect(noLevel.exitCode).toBe(EXIT.USAGE);
    expect(noLevel.stderr).toMatch(/required option '-l, --level <level>'/);
  });
});

for (const backend of backends().filter((b) => b.name === 'loop devices')) {
  describe.runIf(backend.enabled)('create refuses bad input on loop devices', () => {
    afterEach(async () => { await backend.cleanup(); });

    it('foreign member, duplicate device, too small', async () => {
      ws = workspace();
      const members = await backend.members(ws, 3, 16 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '3', '-N', 'loopy', ...members])).exitCode).toBe(EXIT.OK);
      const others = await backend.members(ws, 2, 16 * MIB, 'o');
      await expectRefused(['-l', '5', '-n', '3'], [...others, members[0]!], 'E_MEMBER_FOREIGN', EXIT.FAILED, /already belongs to array loopy/);
      await expectRefused(['-l', '5', '-n', '3'], [others[0]!, others[1]!, others[0]!], 'E_MEMBER_DUPLICATE', EXIT.FAILED, /are the same device/);
      const tiny = await backend.members(ws, 1, 2 * MIB, 't');
      await expectRefused(['-l', '5', '-n', '3'], [...others, tiny[0]!], 'E_MEMBER_TOO_SMALL', EXIT.FAILED, /is 2.00 MiB/);
    });
  });
}
