// Proves: the count the daemon admits control operations with refuses past its maximum, gives a
// place back only after one was taken, and the daemon's bound is a named positive number.
import { expect, it } from 'vitest';
import { BoundedCount } from '../../src/daemon/bounded-count.js';
import { CONTROL_OPS_INFLIGHT_MAX } from '../../src/daemon/daemon.js';

it('admits up to its maximum, then refuses until a place is given back', () => {
  expect(CONTROL_OPS_INFLIGHT_MAX).toBeGreaterThanOrEqual(1);
  const ops = new BoundedCount('control operations in flight', 2);
  expect([ops.tryEnter(), ops.tryEnter(), ops.tryEnter()]).toEqual([true, true, false]);
  expect(ops.count).toBe(2);
  ops.leave();
  expect(ops.tryEnter()).toBe(true);
  ops.leave();
  ops.leave();
  expect(ops.count).toBe(0);
  expect(() => ops.leave()).toThrow(/assertion failed: control operations in flight: a place is given back only after one was taken/);
  expect(() => new BoundedCount('nothing', 0)).toThrow(/assertion failed/);
});
