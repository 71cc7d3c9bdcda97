// What every bench shares: timing an operation into a rate, and the one shape a result is
// reported in, so each bench's figure always stands beside a reference measured in the same run.

export const MB_BYTES = 1_000_000; // MB/s here is decimal, as fio and dd print it.

/**
 * Quick mode (`--quick`, or JRAID_BENCH_QUICK=1): every bench runs with short timings and small
 * files, so the whole harness runs in well under a minute (the smoke test that checks every
 * goal row is printed). Its figures prove that the rows exist, not what the machine can do.
 */
let quick = process.env.JRAID_BENCH_QUICK === '1';

export function setQuick(on: boolean): void {
  quick = on;
}

export function isQuick(): boolean {
  return quick;
}

/** `full` normally, `short` in quick mode. */
export function sized<T>(full: T, short: T): T {
  return quick ? short : full;
}

/** A bench's figure beside a reference taken on the same machine in the same process. */
export interface Comparison {
  /** A stable key for scripts and the smoke test (the goal rows' ids are listed in goals.ts). */
  id: string;
  name: string;
  figure: number;
  unit: string;
  reference: { what: string; figure: number; unit: string };
  /** The ratio figure/reference this figure should reach (an issue's goal), when it has one. */
  goal?: number;
  /** 'atMost': the ratio must stay at or below the goal (a budget), instead of reaching it. */
  goalDirection?: 'atLeast' | 'atMost';
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
  const [warmUpMs, runMs, runCount] = quick ? [20, 60, 1] : [500, 1000, 3];
  await repeatFor(operation, warmUpMs, clock);
  const rates: number[] = [];
  for (let run = 0; run < runCount; run++) {
    const { calls, elapsedMs } = await repeatFor(operation, runMs, clock);
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

function goalMet(c: Comparison): boolean | undefined {
  if (c.goal === undefined) return undefined;
  const ratio = c.figure / c.reference.figure;
  return c.goalDirection === 'atMost' ? ratio <= c.goal : ratio >= c.goal;
}

function digits(value: number): number {
  return Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 1 : 3;
}

/** The table's header line: figure / reference measured in the same run / ratio / goal / met?. */
export const TABLE_HEADER = `${'figure'.padEnd(44)} ${'jraid'.padStart(14)}   ${'reference (same run, prepared the same way)'.padEnd(58)} ${'ratio'.padStart(8)}   goal      met?`;

export function formatComparison(c: Comparison): string {
  const ratio = c.figure / c.reference.figure;
  const met = goalMet(c);
  const reference = `${c.reference.figure.toFixed(digits(c.reference.figure))} ${c.reference.unit} ${c.reference.what}`;
  return `${c.name.padEnd(44)} ${`${c.figure.toFixed(digits(c.figure))} ${c.unit}`.padStart(14)}   ${reference.padEnd(58)} ` +
    `${(ratio < 0.01 ? ratio.toExponential(2) : ratio.toFixed(2)).padStart(8)}   ` +
    (c.goal === undefined ? '' : `${`${c.goalDirection === 'atMost' ? '<=' : '>='} ${c.goal}`.padEnd(9)} ${met ? 'met' : 'MISSED'}`);
}

/** One comparison as `npm run bench -- --json` writes it: the fields above plus the ratio. */
export function comparisonJson(c: Comparison): Comparison & { ratio: number; goalMet?: boolean } {
  const ratio = c.figure / c.reference.figure;
  const met = goalMet(c);
  return { ...c, ratio, ...(met === undefined ? {} : { goalMet: met }) };
}
