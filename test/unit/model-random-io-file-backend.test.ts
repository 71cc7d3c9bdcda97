// Proves: random unaligned reads and writes on image files (the file backend, through
// create and assemble as the CLI uses them) match an in-memory shadow, also across reopening.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assembleArray } from '../../src/engine/assemble.js';
import { createArray } from '../../src/engine/create.js';
import { Rng } from '../../src/rng.js';
import { MIB } from '../../src/units.js';

const dir = mkdtempSync(join(tmpdir(), 'jraid-model-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('random unaligned I/O on image files', () => {
  for (const [level, raidDevices] of [[4, 3], [5, 4], [6, 5]] as const) {
    it(`RAID-${level} on ${raidDevices} image files`, async () => {
      const paths = Array.from({ length: raidDevices }, (_, i) => join(dir, `r${level}-${i}.img`));
      await createArray({ level, raidDevices, paths, chunkSizeBytes: 16 * 1024, createSizeBytes: 5 * MIB, name: `model${level}` });
      let opened = await assembleArray(paths);
      const shadow = Buffer.alloc(opened.array.sizeBytes);
      const rng = new Rng(level * 1000 + raidDevices);
      for (let op = 0; op < 400; op++) {
        if (op === 200) {
          // Halfway, close and reopen: what reached the files must be what was written.
          await opened.array.close();
          await opened.release();
          opened = await assembleArray(paths);
        }
        const length = 1 + rng.int(rng.pick([100, 5000, 40_000]));
        const offset = rng.int(shadow.length - length);
        if (rng.next() < 0.6) {
          const data = rng.bytes(length);
          await opened.array.write(offset, data);
          data.copy(shadow, offset);
        } else {
          expect((await opened.array.read(offset, length)).equals(shadow.subarray(offset, offset + length))).toBe(true);
        }
      }
      expect((await opened.array.read(0, shadow.length)).equals(shadow)).toBe(true);
      await opened.array.close();
      await opened.release();
    });
  }
});
