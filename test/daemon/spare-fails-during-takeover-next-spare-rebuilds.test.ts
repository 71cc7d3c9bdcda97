// Proves: a served array's member fails, the daemon rebuilds onto the first spare, that spare
// fails partway (its writes start failing: JRAID_FAULTS failWritesAfter), and the daemon goes
// on to the second spare by itself, as md does: FailSpare for the first, then RebuildStarted,
// RebuildFinished and SpareActive for the second; detail shows the first faulty and the second
// active; the data reads back, and scrub finds parity consistent.
import { afterEach, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EXIT, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { alive, daemonEnv, daemonLog, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
  ws?.cleanup();
});

it('the first spare fails during the automatic rebuild: the second spare takes over', async () => {
  ws = workspace();
  const env = daemonEnv(ws);
  const members = await makeImages(ws, ['m0.img', 'm1.img', 'm2.img'], 20 * MIB);
  const [spareA, spareB] = await makeImages(ws, ['spare-a.img', 'spare-b.img'], 20 * MIB);
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '64K', '-N', 'r5', '--save-config', ...members])).exitCode).toBe(EXIT.OK);
  expect((await ws.run(['add', 'r5', spareA!])).exitCode).toBe(EXIT.OK);
  expect((await ws.run(['add', 'r5', spareB!])).exitCode).toBe(EXIT.OK);
  // Spare A takes 40 writes (its superblock updates and the first chunks of the copy), then fails every write.
  const daemon = await startDaemon(ws, 'r5', [], { JRAID_FAULTS: JSON.stringify([{ path: spareA, failWritesAfter: 40 }]) });
  pids.push(daemon.pid);
  const data = randomBytes(12 * MIB);
  expect((await ws.run(['write', 'r5', '--offset', '0'], { env, input: data })).exitCode).toBe(EXIT.OK);

  expect((await ws.run(['fail-disk', 'r5', members[1]!], { env })).exitCode).toBe(EXIT.DEGRADED);
  let detail: ReturnType<typeof readJson> | undefined;
  for (const started = Date.now(); ;) {
    detail = readJson((await ws.run(['detail', 'r5', '--json'], { env })).stdout);
    const b = detail.members.find((member: { path: string }) => member.path === spareB);
    if (b?.state === 'active') break;
    expect(Date.now() - started, `spare B takes over\n${daemonLog(ws)}`).toBeLessThan(60_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const stateOf = (path: string) => detail!.members.find((member: { path: string }) => member.path === path)?.state;
  expect(stateOf(spareA!), 'spare A failed').toBe('faulty');
  expect(stateOf(spareB!)).toBe('active');
  expect(detail!.state).toMatch(/clean|active/);

  const log = daemonLog(ws);
  const order = ['event FailSpare r5', 'event RebuildStarted r5', 'event RebuildFinished r5', 'event SpareActive r5'];
  const at = order.map((line) => log.lastIndexOf(line));
  expect(at.every((index) => index >= 0), log).toBe(true);
  expect([...at].sort((a, b) => a - b), 'FailSpare, then the second rebuild').toEqual(at);
  expect(log).toMatch(/event FailSpare r5 .*spare-a\.img: rebuild onto spare .*spare-a\.img failed/);
  expect(log).toMatch(/spare .*spare-b\.img takes over lost role 1: rebuild started/);

  const out = ws.path('out');
  expect((await ws.run(['read', 'r5', '--offset', '0', '--length', String(data.length), '--output', out], { env })).exitCode).toBe(EXIT.OK);
  expect(readFileSync(out).equals(data), 'the data reads back').toBe(true);
  const scrub = readJson((await ws.run(['scrub', 'r5', '--json'], { env })).stdout);
  expect(scrub.mismatchCount).toBe(0);
}, 120_000);
