// Proves the acknowledgement table: every level with and without FUA matches exactly one row,
// the backend replies as that row says (before or after the write completes, with or without a
// sync), FUA always means the write and a sync before the reply, and durable always syncs.
import { describe, expect, it } from 'vitest';
import { allCombinations, matchingRows } from '../../src/decision-table.js';
import { ACKNOWLEDGEMENT, ArrayBackend } from '../../src/daemon/array-backend.js';
import type { RaidArray } from '../../src/engine/raid-array.js';

/** An array whose writes complete only when released, recording what happens when. */
class HeldArray {
  sizeBytes = 1 << 20;
  events: string[] = [];
  release: (() => void) | undefined;
  async write(): Promise<void> {
    await new Promise<void>((resolve) => { this.release = resolve; });
    this.events.push('write-done');
  }
  async flush(): Promise<void> {
    this.events.push('sync');
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('acknowledgement-level table', () => {
  const combinations = allCombinations(ACKNOWLEDGEMENT.domains);

  it('every level, with and without FUA, matches exactly one row, and every row is used', () => {
    expect(combinations).toHaveLength(6);
    const used = new Set<number>();
    for (const facts of combinations) {
      const rows = matchingRows(ACKNOWLEDGEMENT, facts);
      expect(rows, JSON.stringify(facts)).toHaveLength(1);
      used.add(ACKNOWLEDGEMENT.rows.indexOf(rows[0]!));
    }
    expect(used.size).toBe(ACKNOWLEDGEMENT.rows.length);
  });

  for (const facts of allCombinations(ACKNOWLEDGEMENT.domains)) {
    it(`${facts.toughness}${facts.fua ? ' + FUA' : ''}: the reply comes as its row says`, async () => {
      const rule = matchingRows(ACKNOWLEDGEMENT, facts)[0]!.then;
      const array = new HeldArray();
      const backend = new ArrayBackend(array as unknown as RaidArray, facts.toughness);
      const reply = backend.write(0, Buffer.alloc(4096), { fua: facts.fua }).then(() => { array.events.push('reply'); });
      await tick();
      await tick();
      const repliedWhileHeld = array.events.includes('reply');
      array.release!();
      await reply;
      await backend.drain();
      expect(repliedWhileHeld).toBe(!rule.waitForWrite);
      if (rule.waitForWrite) expect(array.events).toEqual(rule.syncBeforeReply ? ['write-done', 'sync', 'reply'] : ['write-done', 'reply']);
      else expect(array.events).toEqual(['reply', 'write-done']);
    });
  }

  it('FUA always waits for the write and a sync; durable always syncs; only fast without FUA replies early', () => {
    for (const facts of combinations) {
      const rule = matchingRows(ACKNOWLEDGEMENT, facts)[0]!.then;
      if (facts.fua || facts.toughness === 'durable') expect(rule).toEqual({ waitForWrite: true, syncBeforeReply: true });
      expect(rule.waitForWrite).toBe(!(facts.toughness === 'fast' && !facts.fua));
    }
  });
});
