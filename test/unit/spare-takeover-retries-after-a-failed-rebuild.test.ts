// Proves: the daemon's automatic spare takeover does not give up after one failed rebuild.
// - The spare fails during the rebuild (it is faulty now): the next spare takes over at once.
// - A member failure heard while a takeover runs is looked at once it ends.
// - The rebuild stops with its spare still a spare: tried again after 1, 2, 4... s, and after
//   RETRY_ATTEMPTS_MAX retries the daemon stops trying and says what to run.
// - An explicit rebuild (idle()) drops a retry waiting for its pause; stop() does too.
// The rebuild itself is a stand-in here (the real one is proven by the rebuild suites); what is
// proven is the takeover's decisions.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RETRY_ATTEMPTS_MAX, RETRY_FIRST_MS, SpareTakeover } from '../../src/daemon/spare-takeover.js';
import { EventHub, type MonitorEvent } from '../../src/daemon/monitor-events.js';
import type { Assembled } from '../../src/engine/assemble.js';
import type { opRebuild } from '../../src/app/operations.js';

type MemberState = 'active' | 'spare' | 'faulty' | 'rebuilding';

/** An array of `states` (index = member number; role = index while active) with role `lost` missing. */
function fakeArray(states: MemberState[]) {
  const members = states.map((state) => ({ state }));
  const lost = new Set<number>();
  const array = {
    sb: { members },
    disks: new Map(states.map((_, index) => [index, { path: `/dev/m${index}` }])),
    lostRoles: () => [...lost],
    state: () => (lost.size > 1 ? 'failed' : lost.size === 1 ? 'degraded' : 'clean'),
  };
  return { assembled: { array } as unknown as Assembled, members, lost };
}

function harness(states: MemberState[], rebuild: (spare: number) => Promise<void>) {
  const fake = fakeArray(states);
  const logs: string[] = [];
  const events: MonitorEvent[] = [];
  const hub = new EventHub((event) => events.push(event));
  const rebuilds: number[] = [];
  const stub = (async () => {
    const spare = fake.members.findIndex((member) => member.state === 'spare');
    rebuilds.push(spare);
    await rebuild(spare);
    // Done: the spare takes the lost role.
    fake.members[spare]!.state = 'active';
    const role = [...fake.lost][0]!;
    fake.lost.delete(role);
    return { rebuilt: [{ path: `/dev/m${spare}`, role, stripesRebuilt: 1, seconds: 0 }], arrayState: 'clean', degraded: false, lostRoles: [], memberPaths: [] };
  }) as unknown as typeof opRebuild;
  const takeover = new SpareTakeover(fake.assembled, (level, message) => logs.push(`${level} ${message}`), hub, 'r5', 'uuid', stub);
  return { ...fake, takeover, logs, events, rebuilds };
}

/**
 * Moves the fake clock `ms` on, then lets the takeover's setImmediate (real: only the retry
 * pauses are faked) and its promise chain run.
 */
async function tick(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
  for (let i = 0; i < 5; i++) await new Promise((done) => setImmediate(done));
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('spare takeover after a failed rebuild', () => {
  it('the spare fails during the rebuild: the next spare takes over at once', async () => {
    const h = harness(['active', 'active', 'active', 'spare', 'spare'], async (spare) => {
      if (spare === 3) {
        h.members[3]!.state = 'faulty';
        h.takeover.memberFailed(); // the array reports the spare's failure while the takeover runs
        throw new Error('write error on /dev/m3');
      }
    });
    h.members[2]!.state = 'faulty';
    h.lost.add(2);
    h.takeover.memberFailed();
    await tick(0);
    await h.takeover.idle();
    expect(h.rebuilds).toEqual([3, 4]);
    expect(h.events.map((event) => event.event)).toEqual(['RebuildStarted', 'FailSpare', 'RebuildStarted', 'RebuildFinished', 'SpareActive']);
    expect(h.events.find((event) => event.event === 'SpareActive')?.member).toMatch(/m4$/);
    expect(h.lost.size).toBe(0);
  });

  it('a spare that fails with no other spare left ends with the advice to add one', async () => {
    const h = harness(['active', 'active', 'active', 'spare'], async () => {
      h.members[3]!.state = 'faulty';
      throw new Error('write error on /dev/m3');
    });
    h.members[1]!.state = 'faulty';
    h.lost.add(1);
    h.takeover.memberFailed();
    await tick(0);
    await h.takeover.idle();
    expect(h.rebuilds).toEqual([3]);
    expect(h.logs.some((line) => /role 1 lost and no spare present: add one with jraid add r5 PATH/.test(line))).toBe(true);
  });

  it('a rebuild that stops with its spare still a spare is tried again after 1, 2, 4, 8, 16 s, then no more', async () => {
    const h = harness(['active', 'active', 'active', 'spare'], async () => {
      throw new Error('the cluster\'s writes could not be paused');
    });
    h.members[0]!.state = 'faulty';
    h.lost.add(0);
    h.takeover.memberFailed();
    await tick(0);
    expect(h.rebuilds.length).toBe(1);
    let pauseMs = RETRY_FIRST_MS;
    for (let attempt = 2; attempt <= RETRY_ATTEMPTS_MAX + 1; attempt++, pauseMs *= 2) {
      await tick(pauseMs - 1);
      expect(h.rebuilds.length, `attempt ${attempt} waits its pause`).toBe(attempt - 1);
      await tick(1);
      expect(h.rebuilds.length, `attempt ${attempt} after ${pauseMs} ms\n${h.logs.join("\n")}`).toBe(attempt);
    }
    await tick(10 * 60_000);
    expect(h.rebuilds.length, 'no attempt after the last').toBe(RETRY_ATTEMPTS_MAX + 1);
    expect(h.logs.filter((line) => /is tried again in/.test(line))).toHaveLength(RETRY_ATTEMPTS_MAX);
    expect(h.logs.some((line) => /failed 6 times: not tried again; .* then run jraid rebuild r5/.test(line))).toBe(true);
  });

  it('a retry that then succeeds makes the spare active; the count starts again', async () => {
    let failures = 2;
    const h = harness(['active', 'active', 'active', 'spare'], async () => {
      if (failures-- > 0) throw new Error('busy');
    });
    h.members[0]!.state = 'faulty';
    h.lost.add(0);
    h.takeover.memberFailed();
    await tick(RETRY_FIRST_MS + 2 * RETRY_FIRST_MS + 10);
    await h.takeover.idle();
    expect(h.rebuilds).toHaveLength(3);
    expect(h.lost.size).toBe(0);
    expect(h.events.filter((event) => event.event === 'SpareActive')).toHaveLength(1);
  });

  it('an explicit rebuild (idle) or stop drops a retry that waits for its pause', async () => {
    for (const end of ['idle', 'stop'] as const) {
      const h = harness(['active', 'active', 'active', 'spare'], async () => {
        throw new Error('busy');
      });
      h.members[0]!.state = 'faulty';
      h.lost.add(0);
      h.takeover.memberFailed();
      await tick(0);
      expect(h.rebuilds).toHaveLength(1);
      if (end === 'idle') await h.takeover.idle();
      else h.takeover.stop();
      await tick(10 * 60_000);
      expect(h.rebuilds, `after ${end}`).toHaveLength(1);
    }
  });
});
