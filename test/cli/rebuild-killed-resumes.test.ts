// Proves: a rebuild killed with SIGKILL at random moments resumes from its checkpoint when run
// again, and yields a member whose data equals the lost member's, byte for byte.
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
      const seenOffsets: number[] = [];
      // 32 MiB at 4 MiB/s takes ~8 s; kill it twice on the way, at random moments after a new
      // checkpoint (written once a second).
      for (let kill = 0; kill < 2; kill++) {
        const child = execa(JRAID_BIN, ['rebuild', spec, '--replacement', replacement!, '--max-speed', '4M'], { reject: false, env: { JRAID_CONFIG: ws.config } });
        // Wait for a checkpoint past the last one (polling: a busy machine starts slowly), then a random moment more.
        const passed = seenOffsets[seenOffsets.length - 1] ?? 0;
        for (let attempt = 0; attempt < 600 && child.exitCode === null; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          // Until the rebuild has enrolled it, the replacement carries no superblock and detail refuses it.
          const members = (readJson((await ws.run(['detail', '--json', `${spec},${replacement}`])).stdout).members ?? []) as { path: string; recoveryOffsetBytes: number }[];
          if ((members.find((m) => m.path === replacement)?.recoveryOffsetBytes ?? 0) > passed) break;
        }
        await new Promise((resolve) => setTimeout(resolve, rng.int(1000)));
        child.kill('SIGKILL');
        const result = await child;
        expect(result.signal, `rebuild ended by itself: ${result.exitCode} ${result.stdout} ${result.stderr}`).toBe('SIGKILL');
        const detail = readJson((await ws.run(['detail', '--json', `${spec},${replacement}`])).stdout);
        const target = detail.members.find((m: { path: string }) => m.path === replacement);
        expect(target.state).toBe('rebuilding');
        seenOffsets.push(target.recoveryOffsetBytes);
        expect(detail.rebuildPercent).toBeGreaterThan(0);
      }
      expect(seenOffsets[1]!).toBeGreaterThan(seenOffsets[0]!);
      // Run the same command again: it finds the interrupted replacement and resumes.
      const resumed = await ws.run(['rebuild', spec, '--replacement', replacement!, '--json']);
      expect(resumed.exitCode).toBe(EXIT.OK);
      const outcome = readJson(resumed.stdout).rebuilt[0];
      expect(outcome.resumedFromBytes).toBe(seenOffsets[1]);
      expect(outcome.path).toBe(replacement);
      const dataBytes = 32 * MIB;
      expect((await dataRegion(replacement!, dataBytes)).equals(await dataRegion(members[2]!, dataBytes))).toBe(true);
      const scrub = await ws.run(['scrub', `${members[0]},${members[1]},${replacement},${members[3]}`, '--json']);
      expect(readJson(scrub.stdout).mismatchCount).toBe(0);
    });
  });
}
