// Proves: the engine itself (not only the CLI) refuses a consistency policy it does not build,
// such as the format's reserved `journal`, before it creates or writes anything.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createArray, CREATABLE_POLICIES } from '../../src/engine/create.js';
import { MIB } from '../../src/units.js';

const dir = mkdtempSync(join(tmpdir(), 'jraid-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('create and consistency policies', () => {
  it('makes dirty-log and resync arrays only', () => {
    expect([...CREATABLE_POLICIES]).toEqual(['dirty-log', 'resync']);
  });

  for (const policy of ['journal', 'yolo', '']) {
    it(`refuses "${policy}" and creates no file`, async () => {
      const paths = ['a', 'b', 'c'].map((name) => join(dir, `${policy || 'empty'}-${name}.img`));
      await expect(createArray({ level: 5, raidDevices: 3, paths, createSizeBytes: 16 * MIB, policy }))
        .rejects.toMatchObject({ code: 'E_BAD_POLICY', message: `unknown consistency policy "${policy}"`, hint: 'use dirty-log or resync' });
      expect(paths.some((path) => existsSync(path))).toBe(false);
    });
  }
});
