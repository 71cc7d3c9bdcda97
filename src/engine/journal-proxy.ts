// The proxy manager (seed 002 claims 3, 19-21; journal policy). When a member fails, a proxy
// takes its I/O manager's place for the member's role. The surviving managers publish to it
// every update they have in flight (each stripe holds a chunk of every role, so every update
// concerns it); the proxy marks each published update's stripe in the write-intent map, durably,
// before that update may rewrite any in-place copy, and takes over the failed member's side of
// it: that side's remaining journal steps and its in-place write are not attempted. The update
// then completes degraded from the sides that remain:
//
//   failed side   what completes it                                  what reads see
//   data          the parity managers journal the delta and the      the new data, rebuilt
//                 new parity and write the parity in place           from the new parity
//   P or Q        the data manager (and the other parity manager)    the new data, read in place
//                 journal and write in place
//
// Later updates (the role still lost) are served by the proxy the same way from their start.
// The marks are what a returning member rebuilds (re-add); the proxy retires once the role has
// a writable member again. More members failed than the level survives: the writer stops
// (journal-policy-write.ts), writes are refused, and recovery at restart reviews every journal
// with the write-intent marks the proxies left (journal-policy-recover.ts).

import type { DataJournalSide } from '../format/data-journal-entry.js';

/** One update as the surviving managers publish it. */
export interface PublishedUpdate {
  stripe: number;
  seq: number;
  /** The failed member's side in the update, or undefined when the update only shares its stripe. */
  side: DataJournalSide | undefined;
}

export interface ProxyHost {
  /** Marks the stripe in the write-intent map, durable on every member still in the array. */
  markStripe(stripe: number): Promise<void>;
}

export interface ProxyStats {
  /** Updates in flight at the failure, handed over by the surviving managers. */
  published: number;
  /** Updates begun after the failure, served by the proxy from their start. */
  served: number;
  /** Of those, updates whose side (data, P or Q) the proxy took over. */
  sidesTaken: number;
}

/** Test only: the proxy forgets what it is handed (to prove a test catches it). */
export type UnsafeProxySkip = 'none' | 'drop-published';

export class ProxyManager {
  readonly role: number;
  readonly memberIndex: number;
  readonly path: string;
  private readonly host: ProxyHost;
  /** Set once the member's faulty mark is durable: from then a writable member for the role retires the proxy. */
  failureCommitted = false;
  readonly stats: ProxyStats = { published: 0, served: 0, sidesTaken: 0 };
  /** Stripes the proxy marked for rebuild. */
  readonly stripesMarked = new Set<number>();
  unsafeSkip: UnsafeProxySkip = 'none';

  constructor(host: ProxyHost, role: number, memberIndex: number, path: string) {
    this.host = host;
    this.role = role;
    this.memberIndex = memberIndex;
    this.path = path;
  }

  /** An update in flight when the member failed, published by the surviving managers. */
  async publish(update: PublishedUpdate): Promise<void> {
    this.stats.published++;
    if (update.side) this.stats.sidesTaken++;
    if (this.unsafeSkip === 'drop-published') return;
    await this.mark(update.stripe);
  }

  /** An update begun while the role is lost: the proxy serves it from its start. */
  async serve(update: PublishedUpdate): Promise<void> {
    this.stats.served++;
    if (update.side) this.stats.sidesTaken++;
    await this.mark(update.stripe);
  }

  private async mark(stripe: number): Promise<void> {
    this.stripesMarked.add(stripe);
    await this.host.markStripe(stripe);
  }
}
