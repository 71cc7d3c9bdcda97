// Proves: through the CLI, re-add rebuilds only the regions written while a member was away,
// and scrub finds injected corruption (naming the member on RAID-6), repairs it, and exits 3.
import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, openSync, writeSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

function corrupt(path: string, offsetBytes: number, length: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(length, 0xa5), 0, length, offsetBytes);
  closeSync(fd);
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`re-add and scrub on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('re-add rebuilds only the regions written while the member was away', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 20 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      expect((await ws.run(['fail-disk', spec, members[1]!])).exitCode).toBe(EXIT.DEGRADED);
      // Two writes in two distinct 1 MiB member regions (3 MiB of array per MiB of member).
      for (const region of [2, 9]) {
        expect((await ws.run(['write', spec, '-o', String(region * 3 * MIB + 500)], { input: Buffer.alloc(3000, region) })).exitCode).toBe(EXIT.DEGRADED);
      }
      const readd = await ws.run(['re-add', spec, members[1]!, '--json']);
      expect(readd.exitCode).toBe(EXIT.OK);
      expect(readd.stderr).toBe('');
      const outcome = readJson(readd.stdout);
      expect(outcome).toMatchObject({ mode: 'partial', stripesRebuilt: 2 * 16, bytesWritten: 2 * MIB, state: 'clean' });
      expect(outcome.reason).toMatch(/2 region\(s\) of 1048576 bytes were written while it was away/);
      const scrub = await ws.run(['scrub', spec, '--json']);
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);
      const again = await ws.run(['re-add', spec, members[1]!]);
      expect(again.exitCode).toBe(EXIT.FAILED);
      expect(again.stderr).toMatch(/is already active in the array/);
    });

    it('scrub finds, names and repairs corruption on each member of a RAID-6', async () => {
      ws = workspace();
      const members = await backend.members(ws, 5, 12 * MIB);
      expect((await ws.run(['create', '-l', '6', '-n', '5', '-c', '16K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      expect((await ws.run(['write', spec, '-o', '0'], { input: Buffer.alloc(2 * MIB, 0x42) })).exitCode).toBe(EXIT.OK);
      for (let role = 0; role < members.length; role++) {
        const stripe = 10 + role;
        corrupt(members[role]!, 4 * MIB + stripe * 16384 + 8192, 512);
        const found = await ws.run(['scrub', spec, '--json']);
        expect(found.exitCode).toBe(EXIT.DEGRADED);
        const report = readJson(found.stdout);
        expect(report.mismatches).toEqual([expect.objectContaining({ stripe, role, path: members[role], blocks: 1, repaired: false })]);
        const repaired = await ws.run(['scrub', spec, '--repair']);
        expect(repaired.exitCode).toBe(EXIT.DEGRADED);
        expect(repaired.stdout).toMatch(new RegExp(`stripe ${stripe} \\(array bytes \\d+\\.\\.\\d+\\): 1 block\\(s\\), bad (data|P|Q) on role ${role} .* - repaired`));
        const clean = await ws.run(['scrub', spec]);
        expect(clean.exitCode).toBe(EXIT.OK);
        expect(clean.stdout).toMatch(/0 mismatched stripe\(s\)/);
      }
    });

    it('scrub on RAID-5 finds corruption on each member and the repair leaves parity consistent', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 12 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '16K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      for (let role = 0; role < members.length; role++) {
        corrupt(members[role]!, 4 * MIB + (20 + role) * 16384, 100);
        const found = readJson((await ws.run(['scrub', spec, '--json'])).stdout);
        expect(found.mismatches.map((m: { stripe: number }) => m.stripe)).toEqual([20 + role]);
        expect((await ws.run(['scrub', spec, '--repair'])).exitCode).toBe(EXIT.DEGRADED);
        expect((await ws.run(['scrub', spec])).exitCode).toBe(EXIT.OK);
      }
    });
  });
}
