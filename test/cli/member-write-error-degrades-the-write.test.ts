// Proves: a member whose writes fail (every write, or every write after the first two) is marked
// faulty, and `write` completes degraded (exit 3) naming it, for every member role of RAID-5 and
// RAID-6 on image files (and one role of each on loop devices); the data reads back, and the
// journal is left clean, not dirty with stripes to recover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { loopSuiteEnabled, makeLoopDevices } from '../helpers/loop.js';

let ws: Workspace;
const payload = randomBytes(256 * 1024 + 123);

beforeAll(() => {
  ws = workspace();
  writeFileSync(ws.path('payload'), payload);
});
afterAll(() => ws?.cleanup());

const faultKinds = [
  { name: 'every write fails', plan: { writeErrorRate: 1 } },
  { name: 'writes fail after the first two', plan: { failWritesAfter: 2 } },
];

async function degradedWrite(members: string[], level: number, role: number, plan: Record<string, number>): Promise<void> {
  const raidDevices = members.length;
  const spec = members.join(',');
  expect((await ws.run(['create', '-l', String(level), '-n', String(raidDevices), '-c', '16K', '-z', `${8 + raidDevices}M`, '--force', ...members])).exitCode).toBe(EXIT.OK);
  const faults = JSON.stringify([{ path: members[role], ...plan }]);
  const write = await ws.run(['write', spec, '-o', '4095', '-i', ws.path('payload')], { env: { JRAID_FAULTS: faults } });
  expect(write.exitCode, write.stderr).toBe(EXIT.DEGRADED);
  expect(write.stdout).toContain(`wrote ${payload.length} bytes at offset 4095 (array degraded)`);
  expect(write.stderr).toContain(`member ${members[role]} (role ${role}) failed`);

  const detail = readJson((await ws.run(['detail', '--json', spec])).stdout);
  expect(detail.state).toBe('degraded');
  expect(detail.members[role]).toMatchObject({ role, state: 'faulty' });
  expect(detail.members.filter((member: { state: string }) => member.state === 'faulty')).toHaveLength(1);
  // A clean shutdown: the journal is clean, and nothing awaits recovery.
  expect(detail.journal).toMatchObject({ clean: true, dirtyStripes: [] });
  expect(detail.notes.join('\n')).not.toMatch(/await recovery|not shut down cleanly/);

  const read = await ws.run(['read', spec, '-o', '4095', '-l', String(payload.length), '--output', ws.path('back')]);
  expect(read.exitCode, read.stderr).toBe(EXIT.DEGRADED);
  expect(readFileSync(ws.path('back')).equals(payload)).toBe(true);
}

describe.runIf(loopSuiteEnabled())('on loop devices', () => {
  for (const { level, raidDevices, role } of [{ level: 5, raidDevices: 3, role: 1 }, { level: 6, raidDevices: 4, role: 3 }]) {
    it(`RAID-${level} member ${role}: every write fails`, async () => {
      const loops = await makeLoopDevices(ws.path(`loop-r${level}`), raidDevices, (8 + raidDevices) * 1024 * 1024);
      try {
        await degradedWrite(loops.devices, level, role, { writeErrorRate: 1 });
      } finally {
        await loops.detach();
      }
    });
  }
});

for (const { level, raidDevices } of [{ level: 5, raidDevices: 3 }, { level: 6, raidDevices: 4 }]) {
  describe(`RAID-${level}, ${raidDevices} members`, () => {
    for (let role = 0; role < raidDevices; role++) {
      for (const kind of faultKinds) {
        it(`member ${role}: ${kind.name}`, async () => {
          const members = Array.from({ length: raidDevices }, (_, i) => ws.path(`r${level}-m${role}-${kind.plan.writeErrorRate ? 'all' : 'after'}-${i}.img`));
          await degradedWrite(members, level, role, kind.plan);
        });
      }
    }
  });
}
