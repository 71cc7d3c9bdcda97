// The rows of issue 11's goals table (and issue 12's journal-policy rows), by the id each bench reports them under: `npm run bench`
// says which of them a run did not print, and the smoke test fails when one goes missing.

export const PARITY_SHAPES = ['4x1MiB', '8x1MiB', '4x64KiB', '8x64KiB'] as const;

export const GOAL_ROW_IDS: readonly string[] = [
  ...PARITY_SHAPES.flatMap((shape) => [`parity-p-${shape}`, `parity-pq-${shape}`, `parity-2loss-${shape}`]),
  'nbd-seq-write-raid5',
  'nbd-randwrite-raid5',
  'nbd-randread-raid5',
  'nbd-randwrite-durable-flush32',
  'nbd-dirtylog-vs-resync',
  'nbd-writes-per-record',
  'nbd-raid6-randwrite',
  'nbd-raid6-seq-write',
  'daemon-peak-rss-4k',
  'daemon-peak-rss-1m',
  'rebuild-raid5',
  'scrub-raid5',
  'nbd-journal-policy-randwrite',
  'nbd-journal-policy-seq-write',
];

/** The benches that print the goal rows (the others add context: ceiling, recovery, takeover). */
export const GOAL_BENCHES: readonly string[] = ['parity', 'maintenance', 'nbd'];
