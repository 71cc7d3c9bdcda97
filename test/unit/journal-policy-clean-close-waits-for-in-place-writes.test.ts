// Proves a clean close of a journal-policy array waits for the in-place writes of acknowledged
// writes (acknowledged at a13, before their in-place copies are rewritten): the next assembly
// finds no interrupted update and needs no recovery.
import { describe, expect, it } from 'vitest';
import { assembleDevices } from '../../src/engine/assemble.js';
import type { Level } from '../../src/format/types.js';
import { Rng } from '../../src/rng.js';
import { makeMemoryMembers } from '../helpers/memory-array.js';

describe('journal policy: clean close', () => {
  for (const [level, raidDevices] of [[5, 4], [6, 5]] as [Level, number][]) {
    it(`RAID-${level}: close right after an acknowledged write leaves the journals settled`, async () => {
      const devices = await makeMemoryMembers({ level, raidDevices, chunkSizeBytes: 4096, policy: 'journal', dataJournalBytes: 256 * 1024 });
      const data = new Rng(level).bytes(100_000);
      const { array } = await assembleDevices(devices, {});
      await array.write(1_234, data);
      await array.close();
      const { array: again, report } = await assembleDevices(devices, { readOnly: true });
      expect(again.dataJournalLive).toBe(0);
      expect(again.unrecovered).toBe('none');
      expect(report.notes.join('\n')).not.toMatch(/not shut down cleanly/);
      expect((await again.read(1_234, data.length)).equals(data)).toBe(true);
      await again.close();
    });
  }
});
