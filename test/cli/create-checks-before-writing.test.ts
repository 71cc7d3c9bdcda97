// Proves: a refused create writes nothing and creates no file, whatever refuses it: a config
// file that already names the array (--save-config), or one new path given twice under two
// spellings (E_MEMBER_DUPLICATE, not a lock error).
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { EXIT, errorLine, hashAll, makeImages, workspace, type Workspace } from '../helpers/cli.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('every create check runs before anything is created or written', () => {
  it('a name the config file already has (--save-config): refused, no member touched or created', async () => {
    ws = workspace();
    const line = 'ARRAY r5 UUID=2f0c9a3e-5d1b-4c7e-9a0f-6b2d8e4c1a77 devices=/srv/a.img,/srv/b.img,/srv/c.img\n';
    writeFileSync(ws.config, line);
    const existing = await makeImages(ws, ['a.img', 'b.img'], 16 * MIB);
    const before = await hashAll(existing);
    const result = await ws.run(['create', '-l', '5', '-n', '3', '-N', 'r5', '--save-config', '-z', '16M', ...existing, ws.path('new.img')]);
    expect(result.exitCode).toBe(EXIT.FAILED);
    const { code, line: message } = errorLine(result);
    expect(code).toBe('E_CONFIG');
    expect(message).toMatch(/already names another array "r5"/);
    expect(await hashAll(existing)).toEqual(before);
    expect(existsSync(ws.path('new.img'))).toBe(false);
    expect(readFileSync(ws.config, 'utf8')).toBe(line);
    // A retry with another name works: nothing was left half-made.
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-N', 'r6', '--save-config', '-z', '16M', ...existing, ws.path('new.img')])).exitCode).toBe(EXIT.OK);
  });

  it('one new path under two spellings: E_MEMBER_DUPLICATE, and no file left behind', async () => {
    ws = workspace();
    const result = await ws.run(['create', '-l', '5', '-n', '3', '-z', '16M', 'x0.img', 'x1.img', './x0.img']);
    expect(result.exitCode).toBe(EXIT.FAILED);
    expect(errorLine(result).code).toBe('E_MEMBER_DUPLICATE');
    for (const name of ['x0.img', 'x1.img']) expect(existsSync(ws.path(name)), name).toBe(false);
  });
});
