// What the write path asks of a consistency policy, in the order of seeds 000/001:
// mark the stripe dirty before touching it (old data and parity are read meanwhile), wait for
// a durable record listing it once the new data is ready, write data and parity, mark clean.

import type { BlockCheck } from '../format/journal-record.js';

export interface WriteTicket {
  /**
   * Resolves once a durable journal record lists this stripe (with `checks`, the block checks
   * of this write, for torn-write detection): data and parity may be written.
   */
  durable(checks?: BlockCheck[]): Promise<void>;
  /** Data and parity writes were issued and completed; the stripe may leave the record once durable. */
  done(): void;
  /** The write failed before touching data or parity. */
  abandon(): void;
}

export interface WriteJournal {
  /** May wait (backpressure) but never fails for lack of room. */
  begin(stripe: number): Promise<WriteTicket>;
  /** Everything completed so far is durable and the record says so. */
  sync(): Promise<void>;
  /**
   * Writes the current state again, so the newest record has all its copies on in-sync members.
   * Only queues the request: it resolves once the loop has written a record started after it.
   */
  rewrite(): Promise<void>;
  /** Resolves once records asked for in the background (rewrites) are written. */
  idle(): Promise<void>;
  /** Clean shutdown: a record with the clean flag. */
  close(): Promise<void>;
  /** Whether the newest record carries the clean flag (nothing may be inconsistent). */
  readonly clean: boolean;
  /** Generation of the newest record written. */
  readonly currentGeneration: number;
  /** Records written and tickets issued so far (benches, daemon status). */
  readonly stats: { recordsWritten: number; memberFlushes: number; shortcutReleases: number; ticketsIssued: number };
}
