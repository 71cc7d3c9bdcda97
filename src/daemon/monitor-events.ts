// Array events with mdadm --monitor's names, as the daemon sees them happen: logged, kept in a
// bounded history, and streamed to `jraid monitor` through the control socket.

export const MONITOR_EVENT_NAMES = [
  'NewArray', 'Fail', 'FailSpare', 'DegradedArray', 'SpareActive', 'RebuildStarted',
  'Rebuild20', 'Rebuild40', 'Rebuild60', 'Rebuild80', 'RebuildFinished', 'ScrubFinished',
  'DeviceDisappeared', 'TestMessage',
] as const;

export type MonitorEventName = (typeof MONITOR_EVENT_NAMES)[number];

export interface MonitorEvent {
  event: MonitorEventName;
  /** The array's name (its uuid when unnamed) and uuid. */
  array: string;
  uuid: string;
  /** The member concerned (absolute path), or null. */
  member: string | null;
  time: string;
  /** One line for people: what happened. */
  message: string;
  /** ScrubFinished: mismatches found; RebuildNN: percent; otherwise absent. */
  mismatches?: number;
  percent?: number;
}

/** Events kept for a monitor that connects late (it is shown what happened since the daemon started, up to this many). */
export const EVENT_HISTORY_MAX = 256;
/** Monitors connected at once. */
export const EVENT_SUBSCRIBERS_MAX = 64;

export class EventHub {
  private readonly history: MonitorEvent[] = [];
  private readonly subscribers = new Set<(event: MonitorEvent) => void>();
  private readonly onEmit: (event: MonitorEvent) => void;

  constructor(onEmit: (event: MonitorEvent) => void) {
    this.onEmit = onEmit;
  }

  emit(event: Omit<MonitorEvent, 'time'>): void {
    const full: MonitorEvent = { ...event, time: new Date().toISOString() };
    this.history.push(full);
    if (this.history.length > EVENT_HISTORY_MAX) this.history.shift();
    this.onEmit(full);
    for (const subscriber of this.subscribers) subscriber(full);
  }

  get past(): readonly MonitorEvent[] {
    return this.history;
  }

  /** Returns the unsubscribe function, or undefined when EVENT_SUBSCRIBERS_MAX are connected. */
  subscribe(subscriber: (event: MonitorEvent) => void): (() => void) | undefined {
    if (this.subscribers.size >= EVENT_SUBSCRIBERS_MAX) return undefined;
    this.subscribers.add(subscriber);
    return () => { this.subscribers.delete(subscriber); };
  }
}

/** Rebuild progress as RebuildNN events: one per 20% step crossed. */
export function rebuildSteps(previousPercent: number, percent: number): (20 | 40 | 60 | 80)[] {
  const steps: (20 | 40 | 60 | 80)[] = [];
  for (const step of [20, 40, 60, 80] as const) if (previousPercent < step && percent >= step) steps.push(step);
  return steps;
}
