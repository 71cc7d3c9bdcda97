// Proves: an ARRAY line of the config file whose member paths are all missing gives one error line
// (E_MEMBER_MISSING) naming them, and a JSON error with --json, for every command that opens it.
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { EXIT, errorLine, readJson, workspace, type Workspace } from '../helpers/cli.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('a config ARRAY line with no member present', () => {
  it('detail, assemble --scan, write, read and recover refuse it with one line', async () => {
    ws = workspace();
    const gone = [ws.path('gone0.img'), ws.path('gone1.img'), ws.path('gone2.img')];
    writeFileSync(ws.config, `ARRAY lost UUID=2f0c9a3e-5d1b-4c7e-9a0f-6b2d8e4c1a77 devices=${gone.join(',')}\n`);
    const commands = [
      ['detail', 'lost'],
      ['assemble', '--scan'],
      ['write', 'lost', '-o', '0', '-i', ws.config],
      ['read', 'lost', '-o', '0', '-l', '1', '--output', ws.path('o')],
      ['recover', 'lost'],
    ];
    for (const args of commands) {
      const result = await ws.run(args);
      expect(result.exitCode, args.join(' ')).toBe(EXIT.FAILED);
      const { code, line } = errorLine(result);
      expect(code).toBe('E_MEMBER_MISSING');
      expect(line).toContain('gone0.img');
      const json = await ws.run([...args, '--json']);
      expect(json.exitCode).toBe(EXIT.FAILED);
      expect(readJson(json.stdout).error).toMatchObject({ code: 'E_MEMBER_MISSING' });
    }
  });
});
