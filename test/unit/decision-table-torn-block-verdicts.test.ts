// Proves the torn-block table: every combination of what a block's CRCs say matches exactly one
// row, classifyBlock gives that row's verdict on real blocks built for each combination, a block
// that matches a new CRC is never called torn, and a half-landed write is always caught.
import { describe, expect, it } from 'vitest';
import { allCombinations, matchingRows } from '../../src/decision-table.js';
import { BLOCK_VERDICTS, blockFacts, classifyBlock, type BlockFacts } from '../../src/journal/recovery-plan.js';
import { crc32c } from '../../src/format/crc32c.js';
import type { BlockCheck } from '../../src/format/journal-record.js';
import { Rng } from '../../src/rng.js';
import { BLOCK_SIZE_BYTES, SECTOR_SIZE_BYTES } from '../../src/units.js';

const other = (crc: number, bits: number) => (crc ^ bits) >>> 0;

/** Checks that make `block` show exactly `facts` (undefined when no checks can: an old match needs a known old CRC). */
function checksFor(block: Buffer, facts: BlockFacts): BlockCheck[] | undefined {
  if (facts.matchesOld && !facts.oldKnown) return undefined;
  const crc = crc32c(block);
  const firstSector = crc32c(block.subarray(0, SECTOR_SIZE_BYTES));
  const newCrc = facts.matchesNew ? crc : other(crc, 2);
  const checks: BlockCheck[] = [];
  if (facts.oldKnown) checks.push({ blockIndex: 0, kind: 'old', checkCrc: facts.matchesOld ? crc : other(crc, 1), newCrc });
  checks.push({ blockIndex: 0, kind: 'first-sector', checkCrc: facts.firstSectorMatchesNew ? firstSector : other(firstSector, 1), newCrc });
  return checks;
}

describe('torn-block verdict table', () => {
  const combinations = allCombinations(BLOCK_VERDICTS.domains);

  it('every combination of facts matches exactly one row, and every row is used', () => {
    expect(combinations).toHaveLength(16);
    const used = new Set<number>();
    for (const facts of combinations) {
      const rows = matchingRows(BLOCK_VERDICTS, facts);
      expect(rows, JSON.stringify(facts)).toHaveLength(1);
      used.add(BLOCK_VERDICTS.rows.indexOf(rows[0]!));
    }
    expect(used.size).toBe(BLOCK_VERDICTS.rows.length);
  });

  it('classifyBlock gives the row verdict on a block built for each reachable combination', () => {
    const rng = new Rng(7);
    let built = 0;
    for (const facts of combinations) {
      const block = Buffer.alloc(BLOCK_SIZE_BYTES);
      for (let i = 0; i < block.length; i++) block[i] = rng.int(256);
      const checks = checksFor(block, facts);
      if (!checks) continue;
      built++;
      expect(blockFacts(block, checks)).toEqual(facts);
      expect(classifyBlock(block, checks), JSON.stringify(facts)).toBe(matchingRows(BLOCK_VERDICTS, facts)[0]!.then);
    }
    expect(built).toBe(12);
  });

  it('a block that matches a new CRC is never torn; an old CRC known and matching neither always is', () => {
    for (const facts of combinations) {
      const verdict = matchingRows(BLOCK_VERDICTS, facts)[0]!.then;
      if (facts.matchesNew) expect(verdict).toBe('new');
      if (!facts.matchesNew && !facts.matchesOld && facts.oldKnown) expect(verdict).toBe('torn');
    }
  });

  it('a write whose first sector landed and the rest did not is torn (no old CRC kept)', () => {
    const old = Buffer.alloc(BLOCK_SIZE_BYTES, 0x11);
    const written = Buffer.alloc(BLOCK_SIZE_BYTES, 0x22);
    const check: BlockCheck = { blockIndex: 0, kind: 'first-sector', newCrc: crc32c(written), checkCrc: crc32c(written.subarray(0, SECTOR_SIZE_BYTES)) };
    const half = Buffer.concat([written.subarray(0, SECTOR_SIZE_BYTES), old.subarray(SECTOR_SIZE_BYTES)]);
    expect(classifyBlock(half, [check])).toBe('torn');
    expect(classifyBlock(written, [check])).toBe('new');
    expect(classifyBlock(old, [check])).toBe('old');
  });
});
