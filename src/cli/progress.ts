// A one-line progress bar with percent, rate and ETA, redrawn on stderr at most 5 times a second.

import { formatSizeBytes } from '../units.js';

export class Progress {
  private readonly label: string;
  private readonly enabled: boolean;
  private readonly startedMs = Date.now();
  private lastDrawMs = 0;
  private drawn = false;

  constructor(label: string, enabled: boolean) {
    this.label = label;
    this.enabled = enabled;
  }

  update(doneBytes: number, totalBytes: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDrawMs < 200 && doneBytes < totalBytes) return;
    this.lastDrawMs = now;
    const fraction = totalBytes > 0 ? Math.min(1, doneBytes / totalBytes) : 1;
    const elapsedSeconds = Math.max(0.001, (now - this.startedMs) / 1000);
    const rate = doneBytes / elapsedSeconds;
    const etaSeconds = rate > 0 ? (totalBytes - doneBytes) / rate : Infinity;
    const width = 30;
    const filled = Math.round(fraction * width);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
    process.stderr.write(`\r${this.label} [${bar}] ${(fraction * 100).toFixed(1).padStart(5)}%  ${formatSizeBytes(rate)}/s  ETA ${formatDuration(etaSeconds)}   `);
    this.drawn = true;
  }

  done(): void {
    if (this.drawn) process.stderr.write('\n');
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
