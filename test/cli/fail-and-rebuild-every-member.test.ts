// Proves: through the CLI, each member failed in turn (every pair on RAID-6) leaves the array's
// content unchanged, and rebuild onto a replacement restores it with clean parity. Loop devices
// fail each RAID-6 member alone (the pairs, on image files, exercise the same engine paths; the
// loop run proves the commands on block devices, and its ten rounds took 90 s of CI time).
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { EXIT, jraidBinary, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`fail and rebuild on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    async function contentSha(spec: string, length: number): Promise<string> {
      const read = await jraidBinary(['read', spec, '--offset', '0', '--length', String(length)], { config: ws.config });
      expect([EXIT.OK, EXIT.DEGRADED], read.stderr).toContain(read.exitCode);
      return sha(read.stdout);
    }

    for (const level of [4, 5, 6] as const) {
      const pairs = level === 6 && backend.name === 'image files';
      it(`RAID-${level}: every member${pairs ? ' and every pair' : ''}`, async () => {
        ws = workspace();
        const count = 4;
        const members = await backend.members(ws, count, 8 * MIB);
        expect((await ws.run(['create', '-l', String(level), '-n', String(count), '-c', '16K', ...members])).exitCode).toBe(EXIT.OK);
        const current = [...members];
        const size = readJson((await ws.run(['detail', '--json', current.join(',')])).stdout).arraySizeBytes as number;
        writeFileSync(ws.path('payload'), randomBytes(size));
        expect((await ws.run(['write', current.join(','), '-o', '0', '-i', ws.path('payload')])).exitCode).toBe(EXIT.OK);
        const expected = await contentSha(current.join(','), size);
        const losses: number[][] = [];
        for (let a = 0; a < count; a++) {
          losses.push([a]);
          if (pairs) for (let b = a + 1; b < count; b++) losses.push([a, b]);
        }
        let checked = 0;
        for (const lost of losses) {
          for (const role of lost) {
            const failed = await ws.run(['fail-disk', current.join(','), current[role]!]);
            expect(failed.exitCode).toBe(EXIT.DEGRADED);
          }
          expect(await contentSha(current.join(','), size)).toBe(expected);
          // The failed member itself serves as the replacement (as after a disk swap): rebuilt in full.
          for (const role of lost) {
            const rebuilt = await ws.run(['rebuild', current.join(','), '--replacement', current[role]!, '--json']);
            const outcome = readJson(rebuilt.stdout);
            expect(outcome.rebuilt).toHaveLength(1);
            expect(outcome.rebuilt[0]).toMatchObject({ role, path: current[role], mode: 'full' });
            expect(rebuilt.exitCode).toBe(role === lost[lost.length - 1] ? EXIT.OK : EXIT.DEGRADED);
          }
          expect(await contentSha(current.join(','), size)).toBe(expected);
          const scrub = await ws.run(['scrub', current.join(','), '--json']);
          expect(scrub.exitCode).toBe(EXIT.OK);
          expect(readJson(scrub.stdout).mismatchCount).toBe(0);
          checked++;
        }
        expect(checked).toBe(losses.length);
      }, 600_000); // RAID-6 runs 10 fail/rebuild rounds (~100 commands): past 120 s on a loaded 2-core machine
    }
  });
}
