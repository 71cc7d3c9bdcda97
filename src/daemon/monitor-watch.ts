// What `jraid monitor` watches: arrays a daemon serves stream their events from the daemon;
// the others are looked at every `delay` and their changes turned into the same events, as
// mdadm --monitor turns /proc/mdstat changes into events.

import { resolve } from 'node:path';
import { collectStatus, type ArrayStatus } from './array-status.js';
import { DaemonClient } from './control-client.js';
import { readRegistry } from './registry.js';
import { rebuildSteps, type MonitorEvent } from './monitor-events.js';

export type Emit = (event: MonitorEvent) => Promise<void>;

function event(status: ArrayStatus, name: MonitorEvent['event'], member: string | null, message: string, extra: Partial<MonitorEvent> = {}): MonitorEvent {
  return { event: name, array: status.name, uuid: status.uuid ?? '', member, time: new Date().toISOString(), message, ...extra };
}

/** The events a first look at an array gives (as mdadm reports a degraded array when it first sees it). */
export function firstLook(status: ArrayStatus): MonitorEvent[] {
  if (status.error) return [event(status, 'DeviceDisappeared', null, `${status.name} cannot be read: ${status.error.message}`)];
  if (status.state === 'degraded' || status.state === 'failed') {
    return [event(status, 'DegradedArray', null, `${status.name} is ${status.state}: ${status.members.filter((m) => m.state !== 'active' && m.state !== 'spare').length} member(s) not in sync`)];
  }
  return [];
}

/** The events between two looks at one array. */
export function changes(before: ArrayStatus, after: ArrayStatus): MonitorEvent[] {
  if (after.error) return before.error ? [] : [event(after, 'DeviceDisappeared', null, `${after.name} cannot be read any more: ${after.error.message}`)];
  if (before.error) return [event(after, 'NewArray', null, `${after.name} can be read again (${after.state})`), ...firstLook(after)];
  const out: MonitorEvent[] = [];
  const was = new Map(before.members.map((member) => [member.number, member]));
  for (const member of after.members) {
    const old = was.get(member.number);
    const path = member.path ? resolve(member.path) : null;
    if (member.state === 'faulty' && old && old.state !== 'faulty') {
      out.push(event(after, old.state === 'spare' || old.state === 'rebuilding' ? 'FailSpare' : 'Fail', path, `${path ?? `member ${member.number}`} failed`));
    }
    if (member.state === 'rebuilding' && old?.state !== 'rebuilding') out.push(event(after, 'RebuildStarted', path, `rebuild onto ${path} started`));
    if (member.state === 'active' && old && (old.state === 'rebuilding' || old.state === 'spare')) {
      out.push(event(after, 'RebuildFinished', path, `rebuild onto ${path} finished`));
      out.push(event(after, 'SpareActive', path, `${path} is active in role ${member.role}`));
    }
  }
  if (after.state === 'degraded' && before.state !== 'degraded' && before.state !== 'failed') out.push(event(after, 'DegradedArray', null, `${after.name} is degraded`));
  if (before.rebuildStatus && after.rebuildStatus) {
    for (const step of rebuildSteps(before.rebuildStatus.percent, after.rebuildStatus.percent)) out.push(event(after, `Rebuild${step}`, null, `rebuild ${step}% done`, { percent: step }));
  }
  if (after.lastScrub && after.lastScrub.finishedAt !== before.lastScrub?.finishedAt) {
    out.push(event(after, 'ScrubFinished', null, `scrub finished: ${after.lastScrub.mismatches} mismatched stripe(s)`, { mismatches: after.lastScrub.mismatches }));
  }
  return out;
}

export interface WatchOptions {
  configFile: string;
  names: string[];
  delayMs: number;
  emit: Emit;
  /** Ends the watch (a signal). */
  signal: AbortSignal;
  /** Called once every served array's event stream is live (so nothing after it is missed). */
  onReady?: () => Promise<void>;
}

/** Follows the arrays until `signal` aborts; rejects when `emit` does (a failing --program). */
export async function watch(initial: ArrayStatus[], options: WatchOptions): Promise<void> {
  const last = new Map(initial.map((status) => [status.uuid ?? status.name, status]));
  const streams = new Map<string, Promise<void>>();
  let failure: unknown;
  // Ends on the caller's signal, or at once when delivering an event fails.
  const stop = new AbortController();
  if (options.signal.aborted) stop.abort();
  options.signal.addEventListener('abort', () => stop.abort(), { once: true });
  const signal = stop.signal;
  const deliver = (monitorEvent: MonitorEvent) => options.emit(monitorEvent).catch((error) => { failure ??= error; stop.abort(); });
  const follow = async (status: ArrayStatus, subscribed: () => void) => {
    const uuid = status.uuid!;
    const record = await readRegistry(uuid);
    const client = record ? await DaemonClient.connect(record) : undefined;
    if (!client) return subscribed();
    let ended = false;
    let queue = Promise.resolve();
    const onAbort = () => client.close();
    signal.addEventListener('abort', onAbort);
    try {
      await client.stream('monitor', {}, (header) => {
        if (header.subscribed) subscribed();
        const streamed = header.event as MonitorEvent | undefined;
        if (!streamed) return;
        if (streamed.event === 'DeviceDisappeared') ended = true;
        queue = queue.then(() => deliver(streamed));
      });
    } finally {
      subscribed();
      signal.removeEventListener('abort', onAbort);
      client.close();
    }
    await queue;
    if (!ended && !signal.aborted) await deliver(event(status, 'DeviceDisappeared', null, `the daemon serving ${status.name} went away`));
  };
  const startStreams = (statuses: ArrayStatus[]): Promise<void>[] => {
    const live: Promise<void>[] = [];
    for (const status of statuses) {
      if (!status.daemon || !status.uuid || streams.has(status.uuid)) continue;
      let subscribed!: () => void;
      live.push(new Promise<void>((done) => { subscribed = done; }));
      streams.set(status.uuid, follow(status, subscribed).finally(() => streams.delete(status.uuid!)));
    }
    return live;
  };
  await Promise.all(startStreams(initial));
  await options.onReady?.().catch((error) => { failure ??= error; stop.abort(); });
  while (!signal.aborted && failure === undefined) {
    await new Promise<void>((done) => {
      const timer = setTimeout(done, options.delayMs);
      signal.addEventListener('abort', () => { clearTimeout(timer); done(); }, { once: true });
    });
    if (signal.aborted || failure !== undefined) break;
    const now = await collectStatus(options.configFile, options.names).catch(() => [] as ArrayStatus[]);
    for (const status of now) {
      const key = status.uuid ?? status.name;
      const before = last.get(key);
      last.set(key, status);
      // A served array reports through its stream; the look only keeps the baseline current.
      if (status.uuid && streams.has(status.uuid)) continue;
      const found = before ? changes(before, status) : [event(status, 'NewArray', null, `${status.name} appeared (${status.state})`), ...firstLook(status)];
      for (const monitorEvent of found) await deliver(monitorEvent);
    }
    startStreams(now);
  }
  await Promise.all(streams.values());
  if (failure !== undefined) throw failure;
}
