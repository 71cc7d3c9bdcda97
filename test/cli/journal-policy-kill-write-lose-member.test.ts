// Proves the journal policy through the CLI, on image files and loop devices: a large `jraid
// write` killed with SIGKILL midway, then one member zeroed, then `jraid recover` on the rest:
// every byte of an earlier completed write is intact, every 4 KiB block of the killed write
// reads as entirely old or entirely new, nothing reads as EIO, and the array then takes writes.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { EXIT, JRAID_BIN, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { examineMember } from '../../src/app/describe.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
const BLOCK = 4096;

/** Overwrites a whole member (file or block device) with zeros: a lost disk replaced blank. */
function zeroMember(path: string, sizeBytes: number): void {
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).isBlockDevice() ? sizeBytes : fstatSync(fd).size;
    const zeros = Buffer.alloc(4 * MIB);
    for (let at = 0; at < size; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at);
  } finally {
    closeSync(fd);
  }
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`journal policy: kill -9 a write, lose a member, recover, on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('earlier writes intact, the killed write old or new per block, no EIO', async () => {
      ws = workspace();
      const memberBytes = 76 * MIB;
      const members = await backend.members(ws, 4, memberBytes);
      const created = await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', '--consistency-policy', 'journal', '--journal-size', '4M', '--json', ...members]);
      expect(created.exitCode, created.stderr).toBe(EXIT.OK);
      expect(readJson(created.stdout)).toMatchObject({ consistencyPolicy: 'journal', journalSizeBytes: 4 * MIB });
      const spec = members.join(',');
      const detail = readJson((await ws.run(['detail', '--json', spec])).stdout);
      expect(detail.dataJournal).toMatchObject({ sizeBytes: 4 * MIB, full: false, pendingRecovery: 0 });
      const arrayBytes: number = detail.arraySizeBytes;

      // An earlier write that completed, over everything the killed write will touch and more.
      const bigOffset = 8 * MIB;
      const big = randomBytes(64 * MIB);
      const first = randomBytes(bigOffset + big.length + 1234);
      writeFileSync(ws.path('first'), first);
      expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('first')])).exitCode).toBe(EXIT.OK);

      // A large write, killed once it has been running a while.
      writeFileSync(ws.path('big'), big);
      const eventsBefore = (await examineMember(members[0]!)).superblock!.events;
      const child = execa(JRAID_BIN, ['write', spec, '-o', String(bigOffset), '-i', ws.path('big')], { reject: false, env: { JRAID_CONFIG: ws.config } });
      for (const started = Date.now(); (await examineMember(members[0]!)).superblock!.events < eventsBefore + 2;) {
        expect(Date.now() - started, 'the write began').toBeLessThan(60_000);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await new Promise((resolve) => setTimeout(resolve, 800));
      child.kill('SIGKILL');
      expect((await child).signal).toBe('SIGKILL');

      // One member lost: zeroed.
      zeroMember(members[2]!, memberBytes);
      const rest = [members[0], members[1], members[3]].join(',');
      const recovered = await ws.run(['recover', rest, '--json']);
      expect(recovered.exitCode, recovered.stderr).toBe(EXIT.DEGRADED);
      const outcome = readJson(recovered.stdout);
      expect(outcome).toMatchObject({ recovered: true, action: 'data-journal', tornBlocks: [], lostBlocks: [], unreadableBlocks: [] });
      expect(outcome.dataJournal.updates).toBeGreaterThan(0);

      const read = await ws.run(['read', rest, '-o', '0', '-l', String(arrayBytes), '--output', ws.path('out')]);
      expect(read.exitCode, read.stderr).toBe(EXIT.DEGRADED); // degraded, and no EIO anywhere
      const out = readFileSync(ws.path('out'));
      expect(out.subarray(0, bigOffset).equals(first.subarray(0, bigOffset))).toBe(true);
      let newBlocks = 0;
      let oldBlocks = 0;
      for (let at = 0; at < big.length; at += BLOCK) {
        const got = out.subarray(bigOffset + at, bigOffset + at + BLOCK);
        if (got.equals(big.subarray(at, at + BLOCK))) newBlocks++;
        else if (got.equals(first.subarray(bigOffset + at, bigOffset + at + BLOCK))) oldBlocks++;
        else expect.fail(`block at ${bigOffset + at} is neither old nor new`);
      }
      expect(newBlocks).toBeGreaterThan(0);
      expect(oldBlocks).toBeGreaterThan(0); // it was killed part-way
      expect(out.subarray(bigOffset + big.length, first.length).equals(first.subarray(bigOffset + big.length))).toBe(true);
      expect(out.subarray(first.length).equals(Buffer.alloc(arrayBytes - first.length))).toBe(true);

      // The recovered array takes writes again (degraded).
      expect((await ws.run(['write', rest, '-o', '0'], { input: 'after' })).exitCode).toBe(EXIT.DEGRADED);
    }, 300_000);
  });
}
