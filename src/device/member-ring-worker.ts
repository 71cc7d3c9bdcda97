// The worker side of a member ring (member-ring.ts): one thread per member that drains the
// ring's submitted slots in order with synchronous pread/pwrite on the member's descriptor,
// publishing each completion, and sleeps on the ring's head when there is nothing to do.

import { readSync, writeSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { RING, SLOT, type RingShared } from './member-ring-layout.js';

const shared = workerData as RingShared;
const control = new Int32Array(shared.control);
const slots = new Float64Array(shared.slots);
const data = new Uint8Array(shared.data);

/** Moves the whole range or fails: bytes moved (short only at end of file), or -errno. */
function transfer(op: number, fd: number, dataOffset: number, lengthBytes: number, offsetBytes: number): number {
  let done = 0;
  try {
    while (done < lengthBytes) {
      const moved = op === RING.OP_READ
        ? readSync(fd, data, dataOffset + done, lengthBytes - done, offsetBytes + done)
        : writeSync(fd, data, dataOffset + done, lengthBytes - done, offsetBytes + done);
      if (moved === 0) break;
      done += moved;
    }
    return done;
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).errno;
    return typeof errno === 'number' && errno < 0 ? errno : -5; // -EIO when the cause has no number
  }
}

let completed = 0;
for (;;) {
  let head = Atomics.load(control, RING.HEAD);
  while (head === completed) {
    if (Atomics.load(control, RING.STOP) !== 0) process.exit(0);
    // Announce the sleep, then look again: a submitter that stored HEAD before seeing ASLEEP
    // is seen here (the wait returns at once when HEAD moved); one after it wakes this thread.
    Atomics.store(control, RING.ASLEEP, 1);
    Atomics.wait(control, RING.HEAD, head);
    Atomics.store(control, RING.ASLEEP, 0);
    head = Atomics.load(control, RING.HEAD);
  }
  let unpublished = 0;
  for (; completed !== head; completed = (completed + 1) | 0) {
    const base = (completed & (RING.SLOTS - 1)) * SLOT.FIELDS;
    slots[base + SLOT.RESULT] = transfer(slots[base + SLOT.OP]!, shared.fd, slots[base + SLOT.DATA_OFFSET]!, slots[base + SLOT.LENGTH]!, slots[base + SLOT.OFFSET]!);
    Atomics.store(control, RING.TAIL, (completed + 1) | 0);
    if (++unpublished === RING.COMPLETIONS_PER_NOTIFY_MAX) {
      Atomics.notify(control, RING.TAIL);
      unpublished = 0;
    }
    if (((completed + 1) | 0) === head) head = Atomics.load(control, RING.HEAD); // more arrived meanwhile: same batch
  }
  if (unpublished > 0) Atomics.notify(control, RING.TAIL);
}
