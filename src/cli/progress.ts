// Live status lines on a terminal, drawn with ora on stderr: a spinner and, for work with a
// known total, a bar with percent, rate and ETA as its text, redrawn at most 5 times a second.
// Nothing is drawn unless stderr is a terminal and neither --json nor --quiet was given.
//
// Progress draws a frame per update (no timer of its own), so a command that fails part-way
// never leaves a spinner's interval keeping the process alive; Waiting spins on ora's timer and
// is always stopped in a finally.

import type { Ora } from 'ora';
import { formatSizeBytes } from '../units.js';

type OraFactory = typeof import('ora').default;
/**
 * ora, loaded only where status lines can be drawn (stderr a terminal): loading it costs about a
 * tenth of a second of CPU, which every scripted call (and every test) would pay for nothing.
 */
let oraFactory: OraFactory | undefined;

/** Loads ora when stderr is a terminal; main() awaits it before running a command. */
export async function prepareStatusLines(): Promise<void> {
  if (process.stderr.isTTY && !oraFactory) oraFactory = (await import('ora')).default;
}

function spinnerFor(text: string, enabled: boolean): Ora | undefined {
  if (!enabled) return undefined;
  if (!oraFactory) throw new Error('status lines drawn before prepareStatusLines() loaded ora');
  return oraFactory({ stream: statusStream(), isEnabled: true, discardStdin: false, text });
}

/** Redraws per second, at most. */
const PROGRESS_DRAWS_PER_SECOND_MAX = 5;

/**
 * stderr as ora sees it. A terminal that reports 0 columns (a pseudo-terminal nobody sized, as
 * script(1) makes) would have ora divide by zero and clear lines forever: it is taken as 80.
 */
function statusStream(): NodeJS.WriteStream {
  const stderr = process.stderr;
  return new Proxy(stderr, {
    get(target, property) {
      if (property === 'columns') return target.columns || 80;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

export class Progress {
  private readonly label: string;
  private readonly spinner: Ora | undefined;
  private readonly startedMs = Date.now();
  private lastDrawMs = 0;
  private drawn = false;

  constructor(label: string, enabled: boolean) {
    this.label = label;
    this.spinner = spinnerFor(label, enabled);
  }

  /**
   * Spin on ora's timer with `text` until the first update (work whose total is not known yet,
   * such as recovery during assembly). The caller stops it in a finally (stop()).
   */
  spin(text: string): void {
    this.spinner?.start(text);
  }

  /** Stops a spinner (idempotent); what was drawn is cleared. */
  stop(): void {
    if (this.spinner?.isSpinning) this.spinner.stop();
  }

  update(doneBytes: number, totalBytes: number): void {
    if (!this.spinner) return;
    if (this.spinner.isSpinning) this.spinner.stop(); // the timer's spinner gives way to the bar
    const now = Date.now();
    if (now - this.lastDrawMs < 1000 / PROGRESS_DRAWS_PER_SECOND_MAX && doneBytes < totalBytes) return;
    this.lastDrawMs = now;
    this.spinner.text = progressText(this.label, doneBytes, totalBytes, (now - this.startedMs) / 1000);
    this.spinner.render();
    this.drawn = true;
  }

  done(): void {
    this.stop();
    if (this.drawn) this.spinner?.succeed();
  }
}

/** "rebuild [=====>     ]  42.0%  12.00 MiB/s  ETA 0:07" */
export function progressText(label: string, doneBytes: number, totalBytes: number, elapsedSeconds: number): string {
  const fraction = totalBytes > 0 ? Math.min(1, doneBytes / totalBytes) : 1;
  const rate = doneBytes / Math.max(0.001, elapsedSeconds);
  const etaSeconds = rate > 0 ? (totalBytes - doneBytes) / rate : Infinity;
  const width = 30;
  const filled = Math.round(fraction * width);
  const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
  return `${label} [${bar}] ${(fraction * 100).toFixed(1).padStart(5)}%  ${formatSizeBytes(rate)}/s  ETA ${formatDuration(etaSeconds)}`;
}

/** A spinner while waiting for something with no known total (a daemon starting, recovery before its first report). */
export async function whileWaiting<T>(text: string, enabled: boolean, work: () => Promise<T>): Promise<T> {
  const spinner = spinnerFor(text, enabled)?.start();
  try {
    return await work();
  } finally {
    spinner?.stop();
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(rest).padStart(2, '0')}` : `${m}:${String(rest).padStart(2, '0')}`;
}
