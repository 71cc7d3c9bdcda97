// Live I/O figures for `jraid iostat`: cumulative counters (operations, bytes, time spent) for
// the array and for each member's data area, kept by the daemon; the CLI turns two samples into
// rates, as zpool iostat does. Counting wraps the array's and each member's read and write
// methods on the instances the daemon serves, so the engine knows nothing of it.

import { resolve } from 'node:path';
import type { MemberDisk } from '../engine/member-disk.js';
import type { RaidArray } from '../engine/raid-array.js';
import { formatUuid } from '../format/uuid.js';

export interface IoCounters {
  reads: number;
  writes: number;
  readBytes: number;
  writtenBytes: number;
  /** Summed time of completed operations (mean latency = time / operations). */
  readMs: number;
  writeMs: number;
}

export interface IoSample {
  /** When the sample was taken, and when counting began (ms since the epoch, the daemon's clock). */
  atMs: number;
  sinceMs: number;
  array: IoCounters;
  members: ({ number: number; uuid: string; path: string; role: number | null; state: string } & IoCounters)[];
  journalRecords: number;
}

function zero(): IoCounters {
  return { reads: 0, writes: 0, readBytes: 0, writtenBytes: 0, readMs: 0, writeMs: 0 };
}

type Method = (offsetBytes: number, buf: Uint8Array) => Promise<void>;

/** Replaces `name` on `target` with a counting version (whatever is there now, own or inherited, stays what it calls). */
function count(target: Record<string, unknown>, name: string, counters: IoCounters, kind: 'read' | 'write'): void {
  const inner = target[name] as Method;
  target[name] = async function counted(this: unknown, offsetBytes: number, buf: Uint8Array) {
    const started = performance.now();
    await inner.call(target, offsetBytes, buf);
    const ms = performance.now() - started;
    if (kind === 'read') { counters.reads++; counters.readBytes += buf.length; counters.readMs += ms; } else { counters.writes++; counters.writtenBytes += buf.length; counters.writeMs += ms; }
  };
}

export class IoStats {
  private readonly array: RaidArray;
  private readonly arrayCounters = zero();
  private readonly memberCounters = new WeakMap<MemberDisk, IoCounters>();
  private readonly startedAtMs = Date.now();

  constructor(array: RaidArray) {
    this.array = array;
    const counters = this.arrayCounters;
    const target = array as unknown as Record<string, unknown>;
    const read = target.read as (offsetBytes: number, lengthBytes: number) => Promise<Buffer>;
    target.read = async (offsetBytes: number, lengthBytes: number) => {
      const started = performance.now();
      const bytes = await read.call(array, offsetBytes, lengthBytes);
      counters.reads++; counters.readBytes += lengthBytes; counters.readMs += performance.now() - started;
      return bytes;
    };
    count(target, 'write', counters, 'write');
    this.instrumentMembers();
  }

  /** Members that joined since (a spare, a replacement) are counted from the first sample that sees them. */
  private instrumentMembers(): void {
    for (const disk of this.array.disks.values()) {
      if (this.memberCounters.has(disk)) continue;
      const counters = zero();
      this.memberCounters.set(disk, counters);
      count(disk as unknown as Record<string, unknown>, 'readData', counters, 'read');
      count(disk as unknown as Record<string, unknown>, 'writeData', counters, 'write');
    }
  }

  sample(): IoSample {
    this.instrumentMembers();
    const { array } = this;
    return {
      atMs: Date.now(),
      sinceMs: this.startedAtMs,
      array: { ...this.arrayCounters },
      members: [...array.disks].map(([index, disk]) => {
        const entry = array.sb.members[index]!;
        return { number: index, uuid: formatUuid(entry.uuid), path: resolve(disk.path), role: entry.role, state: entry.state, ...this.memberCounters.get(disk)! };
      }),
      journalRecords: array.journal?.stats.recordsWritten ?? 0,
    };
  }
}
