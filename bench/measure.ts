// What every bench shares: timing an operation into a rate, and the one shape a result is
// reported in, so each bench's figure always stands beside a reference measured in the same run.

export const MB_BYTES = 1_000_000; // MB/s here is decimal, as fio and dd print it.

const WARM_UP_MS = 500;
const RUN_MS = 1000;
const RUN_COUNT = 3;

/** A bench's figure beside a reference taken on the same machine in the same process. */
export interface Comparison {
  name: string;
  figure: number;
  unit: string;
  reference: { what: string; figure: number; unit: string };
  /** The ratio figure/reference this figure should reach (an issue's goal), when it has one. */
  goal?: number;
}

/**
 * A bench is one function: it measures, and reports each comparison as soon as it has it
 * (long benches such as fio print progressively rather than all at the end).
 */
export type Bench = (report: (comparison: Comparison) => void) => Promise<void>;

/**
 * What a run's duration is read from. 'wall' (the default) for anything that waits (I/O);
 * 'cpu', the process's CPU time, for work that only computes on one thread: on a machine shared
 * with other processes it leaves out the time they take, so a figure and its reference taken
 * seconds apart are compared fairly.
 */
export type Clock = 'wall' | 'cpu';

function nowMs(clock: Clock): number {
  if (clock === 'wall') return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Calls `operation` repeatedly, first for WARM_UP_MS unmeasured, then for RUN_COUNT runs of
 * about RUN_MS each; returns the median rate in MB/s, counting `bytesPerCall` per call.
 */
export async function measureMbPerSecond(operation: () => void | Promise<void>, bytesPerCall: number, clock: Clock = 'wall'): Promise<number> {
  await repeatFor(operation, WARM_UP_MS, clock);
  const rates: number[] = [];
  for (let run = 0; run < RUN_COUNT; run++) {
    const { calls, elapsedMs } = await repeatFor(operation, RUN_MS, clock);
    rates.push((calls * bytesPerCall) / MB_BYTES / (elapsedMs / 1000));
  }
  return median(rates);
}

async function repeatFor(operation: () => void | Promise<void>, durationMs: number, clock: Clock): Promise<{ calls: number; elapsedMs: number }> {
  const start = nowMs(clock);
  let calls = 0;
  let elapsedMs = 0;
  do {
    await operation();
    calls++;
    elapsedMs = nowMs(clock) - start;
  } while (elapsedMs < durationMs);
  return { calls, elapsedMs };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function formatComparison(c: Comparison): string {
  const ratio = c.figure / c.reference.figure;
  const digits = (value: number) => (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 1 : 3);
  return `${`${c.name}:`.padEnd(24)} ${c.figure.toFixed(digits(c.figure)).padStart(7)} ${c.unit}   ` +
    `reference (${c.reference.what}): ${c.reference.figure.toFixed(digits(c.reference.figure)).padStart(7)} ${c.reference.unit}   ratio ${ratio < 0.01 ? ratio.toExponential(2) : ratio.toFixed(2)}` +
    (c.goal === undefined ? '' : `   goal >= ${c.goal.toFixed(1)} ${ratio >= c.goal ? 'met' : 'MISSED'}`);
}

/** One comparison as `npm run bench -- --json` writes it: the fields above plus the ratio. */
export function comparisonJson(c: Comparison): Comparison & { ratio: number; goalMet?: boolean } {
  const ratio = c.figure / c.reference.figure;
  return { ...c, ratio, ...(c.goal === undefined ? {} : { goalMet: ratio >= c.goal }) };
}
