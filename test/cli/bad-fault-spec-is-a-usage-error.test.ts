// Proves: a JRAID_FAULTS value the binary cannot use (an unknown field here) stops the command
// with exit 2 and one line naming the variable, before it writes anything to the members.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EXIT, workspace, type Workspace } from '../helpers/cli.js';

let ws: Workspace;
beforeAll(() => { ws = workspace(); });
afterAll(() => ws?.cleanup());

it('an unknown field in JRAID_FAULTS is a usage error naming the variable, and nothing is written', async () => {
  const members = ['a.img', 'b.img', 'c.img'].map((name) => ws.path(name));
  expect((await ws.run(['create', '-l', '5', '-n', '3', '-c', '16K', '-z', '12M', '--force', ...members])).exitCode).toBe(EXIT.OK);
  const before = members.map((path) => readFileSync(path));
  const faults = JSON.stringify([{ path: members[1], writeErrorRat: 1 }]);
  const write = await ws.run(['write', members.join(','), '-o', '0', '-i', '/dev/null'], { env: { JRAID_FAULTS: faults } });
  expect(write.exitCode, write.stderr).toBe(EXIT.USAGE);
  expect(write.stderr).toContain('JRAID_FAULTS');
  expect(write.stderr).toContain('unknown field "writeErrorRat"');
  expect(write.stderr.trim().split('\n')).toHaveLength(1);
  expect(write.stderr).toContain('[E_USAGE]');
  members.forEach((path, i) => expect(readFileSync(path).equals(before[i]!), `${path} unchanged`).toBe(true));
});
