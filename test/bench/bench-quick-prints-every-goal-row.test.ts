// Proves: `npm run bench -- --quick --json` (the built harness, short runs) writes every row of
// issue 11's goals table, each a finite figure beside a positive reference with its ratio, and
// says whether each goal is met; a row that goes missing fails this test.
import { execa } from 'execa';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/tools.js';

const BENCH_MAIN = resolve(import.meta.dirname, '../../dist/bench/main.js');

/** Issue 11's goals table, row by row, as the ids the bench reports them under. */
const SHAPES = ['4x1MiB', '8x1MiB', '4x64KiB', '8x64KiB'];
const GOAL_TABLE = [
  ...SHAPES.flatMap((shape) => [`parity-p-${shape}`, `parity-pq-${shape}`, `parity-2loss-${shape}`]),
  'nbd-seq-write-raid5', 'nbd-randwrite-raid5', 'nbd-randread-raid5', 'nbd-randwrite-durable-flush32',
  'nbd-dirtylog-vs-resync', 'nbd-writes-per-record', 'nbd-raid6-randwrite', 'nbd-raid6-seq-write',
  'daemon-peak-rss-4k', 'daemon-peak-rss-1m', 'rebuild-raid5', 'scrub-raid5',
];
/** The rows that are printed beside nbdkit or a sibling without a goal of their own. */
const WITHOUT_GOAL = new Set(['nbd-randwrite-durable-flush32', 'nbd-raid6-randwrite', 'nbd-raid6-seq-write']);

interface Row { id: string; figure: number; ratio: number; reference: { figure: number }; goal?: number; goalMet?: boolean }

describe.runIf(requireTool('fio') && requireTool('nbdkit'))('bench harness, quick mode', () => {
  it('writes every goal row as JSON', async () => {
    const run = await execa('node', [BENCH_MAIN, '--quick', '--json'], { reject: false, timeout: 280_000 });
    expect(run.exitCode, run.stderr.slice(-2000)).toBe(0);
    const document = JSON.parse(run.stdout) as { quick: boolean; results: Row[]; missingGoalRows: string[] };
    expect(document.quick).toBe(true);
    expect(document.missingGoalRows).toEqual([]);
    const byId = new Map(document.results.map((row) => [row.id, row]));
    expect(GOAL_TABLE.filter((id) => !byId.has(id))).toEqual([]);
    for (const id of GOAL_TABLE) {
      const row = byId.get(id)!;
      expect(Number.isFinite(row.figure) && row.figure > 0, `${id} figure ${row.figure}`).toBe(true);
      expect(row.reference.figure, `${id} reference`).toBeGreaterThan(0);
      expect(row.ratio).toBeCloseTo(row.figure / row.reference.figure, 9);
      if (WITHOUT_GOAL.has(id)) continue;
      expect(row.goal, `${id} goal`).toBeGreaterThan(0);
      expect(typeof row.goalMet, `${id} met?`).toBe('boolean');
    }
  }, 300_000);
});
