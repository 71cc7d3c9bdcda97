// Proves: an ARRAY line whose UUID= is not the uuid its members carry is refused, naming the
// config file and line, the line's uuid and the members' uuid, by every command that opens the
// array (directly, through assemble --scan, when starting a daemon, and while a daemon serves
// it), and nothing is written to the members.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { EXIT, hashAll, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { alive, daemonEnv, startDaemon } from '../helpers/daemon.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
let pids: number[] = [];
const WRONG_UUID = '0badc0de-0000-4000-8000-000000000001';

afterEach(() => {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  pids = [];
});

function setConfigUuid(config: string, uuid: string): void {
  writeFileSync(config, readFileSync(config, 'utf8').replace(/UUID=[0-9a-f-]+/, `UUID=${uuid}`));
}

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`config uuid check on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('refuses a config line whose uuid does not match the members', async () => {
      ws = workspace();
      const env = daemonEnv(ws);
      const members = await backend.members(ws, 3, 8 * MIB);
      const created = await ws.run(['create', '-l', '5', '-n', '3', '-N', 'r5', '--save-config', '--json', ...members]);
      expect(created.exitCode).toBe(EXIT.OK);
      const realUuid = readJson(created.stdout).uuid as string;
      expect(realUuid).toMatch(/^[0-9a-f-]{36}$/);
      setConfigUuid(ws.config, WRONG_UUID);
      const line = readFileSync(ws.config, 'utf8').split('\n').findIndex((text) => text.startsWith('ARRAY')) + 1;
      const before = await hashAll(members);

      const expectRefusal = (result: { exitCode: number; stderr: string }) => {
        expect(result.exitCode).toBe(EXIT.FAILED);
        expect(result.stderr).toContain(`${ws.config}:${line}`);
        expect(result.stderr).toContain(`UUID=${WRONG_UUID}`);
        expect(result.stderr).toContain(`array uuid ${realUuid}`);
        expect(result.stderr).toMatch(/\[E_CONFIG\]\n$/);
      };
      expectRefusal(await ws.run(['detail', 'r5']));
      expectRefusal(await ws.run(['write', 'r5', '-o', '0'], { input: Buffer.alloc(4096, 1) }));
      expectRefusal(await ws.run(['fail-disk', 'r5', members[1]!]));
      expectRefusal(await ws.run(['assemble', '--scan']));
      expectRefusal(await ws.run(['daemon', 'r5'], { env }));
      const json = await ws.run(['detail', 'r5', '--json']);
      expect(readJson(json.stdout).error).toMatchObject({ code: 'E_CONFIG', path: ws.config });
      expect(await hashAll(members)).toEqual(before);

      // While a daemon serves the array (started with the right line), a line changed under it is refused too.
      setConfigUuid(ws.config, realUuid);
      const daemon = await startDaemon(ws, 'r5');
      pids.push(daemon.pid);
      expect((await ws.run(['detail', 'r5'], { env })).exitCode).toBe(EXIT.OK);
      setConfigUuid(ws.config, WRONG_UUID);
      expectRefusal(await ws.run(['detail', 'r5'], { env }));
      expectRefusal(await ws.run(['stop', 'r5'], { env }));
      setConfigUuid(ws.config, realUuid);
      expect((await ws.run(['stop', 'r5'], { env })).exitCode).toBe(EXIT.OK);
    });
  });
}
