// The shared memory of a member ring (member-ring.ts, member-ring-worker.ts): control words,
// a power-of-two table of slots, and a data area the slots' bytes travel through.

export const RING = {
  /**
   * Int32 control words: slots submitted, slots completed (both counters wrap), stop flag, and
   * the worker's "asleep on HEAD" flag (set before it waits, so a submitter wakes it only then).
   */
  HEAD: 0,
  TAIL: 1,
  STOP: 2,
  ASLEEP: 3,
  CONTROL_WORDS: 4,
  /** The worker publishes completions at the end of each batch, and at least this often within one. */
  COMPLETIONS_PER_NOTIFY_MAX: 16,
  /** Slots in the table (a power of two): the most requests in flight on one member. */
  SLOTS: 256,
  OP_READ: 1,
  OP_WRITE: 2,
} as const;

/** Float64 fields of one slot. */
export const SLOT = {
  OP: 0,
  OFFSET: 1,
  LENGTH: 2,
  DATA_OFFSET: 3,
  /** Bytes moved, or -errno. */
  RESULT: 4,
  FIELDS: 5,
} as const;

export interface RingShared {
  fd: number;
  control: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  data: SharedArrayBuffer;
}
