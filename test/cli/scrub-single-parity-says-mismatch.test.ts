// Proves: scrub on RAID-4/5 reports a corrupted data chunk as a parity mismatch of its stripe
// (with the stripe's array byte range), never blaming P, directly and through the daemon; on
// RAID-6 it still names the bad data chunk and its member.
import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, openSync, writeSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { Geometry } from '../../src/geometry/geometry.js';
import type { LayoutName, Level } from '../../src/format/types.js';
import { KIB, MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
const CHUNK_BYTES = 16 * KIB;
const MEMBER_BYTES = 8 * MIB;
const DATA_SIZE_BYTES = MEMBER_BYTES - 4 * MIB;

function corrupt(path: string, offsetBytes: number, length: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(length, 0xa5), 0, length, offsetBytes);
  closeSync(fd);
}

/** The stripe, its array byte range, and the role holding data chunk `dataIndex`, from the geometry. */
function target(level: Level, layout: LayoutName, raidDevices: number, stripe: number, dataIndex: number) {
  const geometry = new Geometry({ level, layout, raidDevices, chunkSizeBytes: CHUNK_BYTES, dataSizeBytes: DATA_SIZE_BYTES });
  const stripeBytes = CHUNK_BYTES * geometry.dataDisks;
  return { role: geometry.stripeMap(stripe).dataRoles[dataIndex]!, arrayOffsetBytes: stripe * stripeBytes, arrayLengthBytes: stripeBytes };
}

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`scrub reports on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    for (const [level, layout] of [[4, 'parity-last'], [5, 'left-symmetric']] as const) {
      it(`RAID-${level}: a corrupted data chunk is a parity mismatch of its stripe, not bad P`, async () => {
        ws = workspace();
        const members = await backend.members(ws, 4, MEMBER_BYTES);
        expect((await ws.run(['create', '-l', String(level), '-n', '4', '-c', '16K', '-N', 'single', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
        expect((await ws.run(['write', 'single', '-o', '0'], { input: Buffer.alloc(MIB, 0x42) })).exitCode).toBe(EXIT.OK);
        const stripe = 7;
        const where = target(level, layout, 4, stripe, 1);
        corrupt(members[where.role]!, 4 * MIB + stripe * CHUNK_BYTES + 4096, 100);

        const text = await ws.run(['scrub', 'single']);
        expect(text.exitCode).toBe(EXIT.DEGRADED);
        const end = where.arrayOffsetBytes + where.arrayLengthBytes - 1;
        expect(text.stdout).toContain(`stripe ${stripe} (array bytes ${where.arrayOffsetBytes}..${end}): 1 block(s), parity mismatch`);
        expect(text.stdout).not.toMatch(/bad P/);
        const json = readJson((await ws.run(['scrub', 'single', '--json'])).stdout);
        expect(json.mismatches).toEqual([{
          stripe, bad: 'parity-mismatch', role: null, path: null, blocks: 1, repaired: false,
          arrayOffsetBytes: where.arrayOffsetBytes, arrayLengthBytes: where.arrayLengthBytes,
        }]);

        // The same report through the daemon; --repair rewrites parity from the data.
        const env = daemonEnv(ws);
        const daemon = await startDaemon(ws, 'single');
        pids.push(daemon.pid);
        const served = await ws.run(['scrub', 'single', '--json'], { env });
        expect(readJson(served.stdout).mismatches).toEqual(json.mismatches);
        const repaired = await ws.run(['scrub', 'single', '--repair'], { env });
        expect(repaired.exitCode).toBe(EXIT.DEGRADED);
        expect(repaired.stdout).toMatch(new RegExp(`stripe ${stripe} .*parity mismatch.* - parity rewritten from the data`));
        expect((await ws.run(['scrub', 'single'], { env })).exitCode).toBe(EXIT.OK);
        expect((await ws.run(['stop', 'single'], { env })).exitCode).toBe(EXIT.OK);
      });
    }

    it('RAID-6: a corrupted data chunk is still named, with its member', async () => {
      ws = workspace();
      const members = await backend.members(ws, 5, MEMBER_BYTES);
      expect((await ws.run(['create', '-l', '6', '-n', '5', '-c', '16K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      expect((await ws.run(['write', spec, '-o', '0'], { input: Buffer.alloc(MIB, 0x42) })).exitCode).toBe(EXIT.OK);
      const stripe = 6;
      const where = target(6, 'left-symmetric', 5, stripe, 2);
      corrupt(members[where.role]!, 4 * MIB + stripe * CHUNK_BYTES + 8192, 100);
      const text = await ws.run(['scrub', spec]);
      expect(text.exitCode).toBe(EXIT.DEGRADED);
      expect(text.stdout).toContain(`stripe ${stripe} (array bytes ${where.arrayOffsetBytes}..${where.arrayOffsetBytes + where.arrayLengthBytes - 1}): 1 block(s), bad data on role ${where.role} (${members[where.role]})`);
      const json = readJson((await ws.run(['scrub', spec, '--json'])).stdout);
      expect(json.mismatches).toEqual([expect.objectContaining({ stripe, bad: 'data', role: where.role, path: members[where.role] })]);
    });
  });
}
