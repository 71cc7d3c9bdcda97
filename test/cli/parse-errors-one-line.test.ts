// Proves: a malformed command line (unknown option, bad size, negative offset, missing argument)
// gives the promised one-line "jraid: error: ... [E_CODE]" with exit 2, and with --json the error object.
import { afterEach, describe, expect, it } from 'vitest';
import { EXIT, errorLine, makeImages, readJson, workspace, type Workspace } from '../helpers/cli.js';
import { MIB } from '../../src/units.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('parse errors', () => {
  it('each is one error line with a code, exit 2, and a JSON error with --json', async () => {
    ws = workspace();
    const members = await makeImages(ws, ['a', 'b', 'c'], 8 * MIB);
    const spec = members.join(',');
    const cases: [string[], RegExp][] = [
      [['create', '-l', '5', '--levle', '5', '-n', '3', ...members], /unknown option '--levle'.*did you mean --level\?/i],
      // A misspelt option is named before the option it stands for is missed.
      [['create', '--levle', '5', '-n', '3', ...members], /unknown option '--levle'.*did you mean --level\?/i],
      [['rebuild', spec, '--replacment', members[0]!], /unknown option '--replacment'.*did you mean --replacement\?/i],
      [['stauts'], /unknown command 'stauts'.*did you mean status\?/i],
      [['read', spec, '--offset', '-5', '--length', '1', '--output', ws.path('o')], /'-5' is invalid.*"-5" is not a size/],
      [['write', spec, '--offset', '12Q'], /"12Q" is not a size/],
      [['create', '-l', '5', ...members], /required option '-n, --raid-devices <count>' not specified/],
      [['fail-disk', spec], /missing required argument 'member'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const text = await ws.run(args);
      expect(text.exitCode, args.join(' ')).toBe(EXIT.USAGE);
      const { code, line } = errorLine(text);
      expect(code).toBe('E_USAGE');
      expect(line).toMatch(message);
      expect(text.stdout).toBe('');
      const json = await ws.run([...args, '--json']);
      expect(json.exitCode).toBe(EXIT.USAGE);
      expect(readJson(json.stdout).error).toMatchObject({ code: 'E_USAGE' });
      expect(readJson(json.stdout).error.message).toMatch(message);
    }
  });
});
