// Proves: detail --scan prints an ARRAY line per config-file array as it is now (a failed member
// left out), which a fresh config file accepts back; examine --scan groups members by array from
// their own superblocks and names a path that carries none, exiting 1.
import { afterEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EXIT, errorLine, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('--scan', () => {
  it('detail --scan: one line per array, current members, pasted back it assembles', async () => {
    ws = workspace();
    const a = await makeImages(ws, ['a0.img', 'a1.img', 'a2.img'], 12 * MIB);
    const b = await makeImages(ws, ['b0.img', 'b1.img', 'b2.img', 'b3.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'ra', '--save-config', ...a])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['create', '-l', '6', '-n', '4', '-c', '64K', '-N', 'rb', '--save-config', ...b])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['fail-disk', 'rb', b[2]!])).exitCode).toBe(EXIT.DEGRADED);
    const text = await ws.run(['detail', '--scan']);
    expect(text.exitCode).toBe(EXIT.OK);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ARRAY ra level=raid5 num-devices=3 UUID=[0-9a-f-]{36} devices=/);
    expect(lines[1]).toContain(`devices=${[b[0], b[1], b[3]].map((p) => resolve(p!)).join(',')}`);
    const json = readJson((await ws.run(['detail', '--scan', '--json'])).stdout);
    expect(json.arrays.map((array: { name: string }) => array.name)).toEqual(['ra', 'rb']);
    expect(json.arrays[1].devices).not.toContain(resolve(b[2]!));
    const fresh = ws.path('fresh.conf');
    await writeFile(fresh, `${text.stdout}`);
    const assembled = await ws.run(['assemble', '--scan', '--readonly', '--config', fresh]);
    expect(assembled.exitCode).toBe(EXIT.DEGRADED); // rb runs degraded; both assembled
    expect(assembled.stdout + assembled.stderr).toContain('ra');
  });

  it('detail --scan with an array named, or detail with neither, is a usage error', async () => {
    ws = workspace();
    expect(errorLine(await ws.run(['detail'])).code).toBe('E_USAGE');
    const both = await ws.run(['detail', '--scan', 'r5']);
    expect(both.exitCode).toBe(EXIT.USAGE);
    expect(errorLine(both).code).toBe('E_USAGE');
  });

  it('examine --scan groups members by array and names a non-member', async () => {
    ws = workspace();
    const a = await makeImages(ws, ['a0.img', 'a1.img', 'a2.img'], 12 * MIB);
    const b = await makeImages(ws, ['b0.img', 'b1.img', 'b2.img'], 12 * MIB);
    const [blank] = await makeImages(ws, ['blank.img'], 12 * MIB);
    expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'ra', ...a])).exitCode).toBe(EXIT.OK);
    expect((await ws.run(['create', '-l', '4', '-n', '3', '-c', '64K', '-N', 'rb', ...b])).exitCode).toBe(EXIT.OK);
    const good = await ws.run(['examine', '--scan', '--json', ...a, ...b]);
    expect(good.exitCode).toBe(EXIT.OK);
    const arrays = readJson(good.stdout).arrays as { name: string; level: number; devices: string[] }[];
    expect(arrays.map((array) => [array.name, array.level, array.devices.length])).toEqual([['ra', 5, 3], ['rb', 4, 3]]);
    const mixed = await ws.run(['examine', '--scan', a[0]!, blank!]);
    expect(mixed.exitCode).toBe(EXIT.FAILED);
    expect(mixed.stdout).toMatch(/^ARRAY ra /);
    expect(errorLine(mixed).code).toBe('E_MEMBER_NOT_JRAID');
  });
});
