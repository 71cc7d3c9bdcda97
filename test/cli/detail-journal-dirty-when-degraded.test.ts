// Proves: detail on a dirty array that is also degraded says the journal is dirty (text and
// JSON), listing the stripes that await recovery, instead of calling it clean.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { EXIT, JRAID_BIN, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { backends } from '../helpers/backends.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;

for (const backend of backends()) {
  describe.runIf(backend.enabled)(`detail of a dirty degraded array on ${backend.name}`, () => {
    afterEach(async () => { await backend.cleanup(); ws?.cleanup(); });

    it('shows the journal dirty with its listed stripes', async () => {
      ws = workspace();
      const members = await backend.members(ws, 4, 76 * MIB);
      expect((await ws.run(['create', '-l', '5', '-n', '4', '-c', '64K', ...members])).exitCode).toBe(EXIT.OK);
      const spec = members.join(',');
      // A long write, killed once detail shows stripes listed in the journal (detail takes no lock).
      writeFileSync(ws.path('big'), randomBytes(216 * MIB));
      const writer = execa(JRAID_BIN, ['write', spec, '-o', '0', '-i', ws.path('big')], { reject: false, env: { JRAID_CONFIG: ws.config } });
      let listed: number[] = [];
      for (let attempt = 0; attempt < 600 && listed.length === 0 && writer.exitCode === null; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        listed = readJson((await ws.run(['detail', '--json', spec])).stdout).journal.dirtyStripes;
      }
      writer.kill('SIGKILL');
      expect((await writer).signal).toBe('SIGKILL');
      expect(listed.length).toBeGreaterThan(0);
      const degraded = [members[0], members[1], members[3]].join(',');
      const json = await ws.run(['detail', '--json', degraded]);
      expect(json.exitCode).toBe(EXIT.DEGRADED);
      const detail = readJson(json.stdout);
      expect(detail.state).toBe('degraded');
      expect(detail.journal.clean).toBe(false);
      expect(detail.journal.dirtyStripes.length).toBeGreaterThan(0);
      expect(detail.clean).toBe(false);
      const text = await ws.run(['detail', degraded]);
      expect(text.stdout).toMatch(new RegExp(`Journal : dirty \\(generation \\d+\\): ${detail.journal.dirtyStripes.length} stripe\\(s\\) listed`));
      expect(text.stdout).not.toMatch(/Journal : clean/);
    });
  });
}
