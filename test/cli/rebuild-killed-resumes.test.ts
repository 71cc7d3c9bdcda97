// Proves: a rebuild killed with SIGKILL at random moments resumes from its (non-zero) checkpoint
// when run again, not from the start, rebuilding only the stripes past it, and yields a member
// whose data equals the lost member's, byte for byte.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { EXIT, JRAID_BIN, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { Rng } from '../../src/rng.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

async function dataRegion(path: string, bytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await handle.read(buf, 0, bytes, 4 * MIB);
    return buf;
  } finally {
    await handle.close();
  }
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`killed rebuild on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('resumes after SIGKILL and yields an exact member', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 36 * MIB);
      const [replacement] = await backend.members(ws, 1, 36 * MIB, 'r');
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      writeFileSync(ws.path('payload'), randomBytes(90 * MIB));
      expect((await ws.run(['write', spec, '-o', '0', '-i', ws.path('payload')])).exitCode).toBe(EXIT.OK);
      expect((await ws.run(['fail-disk', spec, members[2]!])).exitCode).toBe(EXIT.DEGRADED);
      const rng = new Rng(7);
      const seenOffsets: number[] = [0];
      /** The replacement's checkpoint, or undefined before it has joined the array. */
      const checkpoint = async (): Promise<number | undefined> => {
        const detail = readJson((await ws.run(['detail', '--json', `${spec},${replacement}`])).stdout);
        const target = detail.members?.find((m: { path: string }) => m.path === replacement);
        // Enrolled but not yet given the role (a spare for a moment): not joined yet.
        if (!target || (target.state === 'spare' && target.recoveryOffsetBytes === 0)) return undefined;
        expect(target.state, 'the rebuild finished before it was killed: too fast for this test').toBe('rebuilding');
        return target.recoveryOffsetBytes as number;
      };
      const until = async (probe: () => Promise<boolean>, what: string) => {
        for (const started = Date.now(); !(await probe());) {
          if (Date.now() - started > 30_000) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      // 32 MiB of member data is 96 MiB of array data: at 2 MiB/s (of array data) it takes ~48 s;
      // kill it twice on the way. The checkpoint reaches the superblocks once a second, so a run
      // that started over from zero would first record about 0.7 MiB: each run is let past 4 MiB
      // beyond where it started before it is killed, and the first checkpoint of the next run
      // must lie beyond the last one.
      for (let kill = 0; kill < 2; kill++) {
        const child = execa(JRAID_BIN, ['rebuild', spec, '--replacement', replacement!, '--max-speed', '2M'], { reject: false, env: { JRAID_CONFIG: ws.config } });
        const previous = seenOffsets[kill]!;
        let first: number | undefined;
        await until(async () => (first = await checkpoint()) !== undefined && first !== previous, 'the first checkpoint of this run');
        expect(first).toBeGreaterThan(previous);
        await until(async () => ((await checkpoint()) ?? 0) >= previous + 4 * MIB, 'this run to pass 4 MiB');
        await new Promise((resolve) => setTimeout(resolve, rng.int(700)));
        child.kill('SIGKILL');
        const result = await child;
        expect(result.signal, `rebuild ended by itself: ${result.exitCode} ${result.stdout} ${result.stderr}`).toBe('SIGKILL');
        seenOffsets.push((await checkpoint())!);
      }
      expect(seenOffsets[1]!).toBeGreaterThan(0);
      expect(seenOffsets[2]!).toBeGreaterThan(seenOffsets[1]!);
      // Run the same command again: it finds the interrupted replacement and resumes from the
      // last checkpoint, rebuilding only the stripes past it.
      const resumed = await ws.run(['rebuild', spec, '--replacement', replacement!, '--json']);
      expect(resumed.exitCode).toBe(EXIT.OK);
      const outcome = readJson(resumed.stdout).rebuilt[0];
      expect(outcome.resumedFromBytes).toBe(seenOffsets[2]);
      expect(outcome.resumedFromBytes).toBeGreaterThan(0);
      expect(outcome.path).toBe(replacement);
      const dataBytes = 32 * MIB;
      expect(outcome.stripesRebuilt).toBe((dataBytes - outcome.resumedFromBytes) / (64 * 1024));
      expect(outcome.bytesWritten).toBe(dataBytes - outcome.resumedFromBytes);
      expect((await dataRegion(replacement!, dataBytes)).equals(await dataRegion(members[2]!, dataBytes))).toBe(true);
      const scrub = await ws.run(['scrub', `${members[0]},${members[1]},${replacement},${members[3]}`, '--json']);
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);
    });
  });
}
