// Proves: the engine itself (not only the CLI) makes the three consistency policies and refuses
// any other before it creates or writes anything; the journal policy gets a data-journal region
// of --journal-size (16 MiB by default) at the end of each member, and a bad or misplaced
// --journal-size is refused before anything is written.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArray, CREATABLE_POLICIES } from '../../src/engine/create.js';
import { DATA_JOURNAL_DEFAULT_BYTES, findRegion } from '../../src/format/layout.js';
import { MIB } from '../../src/units.js';

const dir = mkdtempSync(join(tmpdir(), 'jraid-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pathsFor = (what: string) => ['a', 'b', 'c'].map((name) => join(dir, `${what}-${name}.img`));

describe('create and consistency policies', () => {
  it('makes dirty-log, journal and resync arrays', () => {
    expect([...CREATABLE_POLICIES]).toEqual(['dirty-log', 'journal', 'resync']);
  });

  for (const policy of ['yolo', '']) {
    it(`refuses "${policy}" and creates no file`, async () => {
      const paths = pathsFor(policy || 'empty');
      await expect(createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 16 * MIB, policy }))
        .rejects.toMatchObject({ code: 'E_BAD_POLICY', message: `unknown consistency policy "${policy}"`, hint: 'use dirty-log, journal, resync' });
      expect(paths.some((path) => existsSync(path))).toBe(false);
    });
  }

  it('journal: a data-journal region of the default size ends each member', async () => {
    const result = await createArray({ level: 5, raidDevices: 3, paths: pathsFor('journal-default'), createSizeBytes: 64 * MIB, policy: 'journal' });
    const sb = result.superblock;
    expect(sb.policy).toBe('journal');
    const region = findRegion(sb.regions, 'data-journal')!;
    expect(region.sizeBytes).toBe(DATA_JOURNAL_DEFAULT_BYTES);
    expect(region.offsetBytes + region.sizeBytes).toBe(64 * MIB);
    expect(findRegion(sb.regions, 'data')!.offsetBytes + findRegion(sb.regions, 'data')!.sizeBytes).toBe(region.offsetBytes);
  });

  it('journal: --journal-size sets the region', async () => {
    const result = await createArray({ level: 6, raidDevices: 4, paths: [...pathsFor('journal-sized'), join(dir, 'journal-sized-d.img')], createSizeBytes: 32 * MIB, policy: 'journal', journalSizeBytes: 2 * MIB });
    expect(findRegion(result.superblock.regions, 'data-journal')!.sizeBytes).toBe(2 * MIB);
  });

  it('refuses --journal-size for another policy, or one not a multiple of 4 KiB or below 256 KiB, writing nothing', async () => {
    const paths = pathsFor('bad-size');
    await expect(createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 16 * MIB, policy: 'dirty-log', journalSizeBytes: MIB }))
      .rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 16 * MIB, policy: 'journal', journalSizeBytes: MIB + 512 }))
      .rejects.toMatchObject({ code: 'E_BAD_SIZE' });
    await expect(createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 16 * MIB, policy: 'journal', journalSizeBytes: 128 * 1024 }))
      .rejects.toMatchObject({ code: 'E_BAD_SIZE' });
    await expect(createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 16 * MIB, policy: 'journal', journalSizeBytes: 32 * MIB }))
      .rejects.toMatchObject({ code: 'E_MEMBER_TOO_SMALL' });
    expect(paths.some((path) => existsSync(path))).toBe(false);
  });
});
