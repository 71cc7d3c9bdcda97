// Proves: jraid completion bash completes every command jraid --help lists and each command's
// options, from the command definitions (a command's own option, a short one, files for
// arguments); the zsh script names every command and its options; an unknown shell is refused.
import { afterEach, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, writeFileSync } from 'node:fs';
import { EXIT, errorLine, workspace, type Workspace } from '../helpers/cli.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

async function complete(script: string, words: string[], cwd: string): Promise<string[]> {
  const program = `source ${script}; COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _jraid; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const { stdout } = await execa('bash', ['-c', program], { cwd });
  return stdout.split('\n').filter(Boolean);
}

describe('jraid completion', () => {
  it('bash: commands, options, files', async () => {
    ws = workspace();
    const generated = await ws.run(['completion', 'bash']);
    expect(generated.exitCode).toBe(EXIT.OK);
    const script = ws.path('jraid.bash');
    writeFileSync(script, generated.stdout);
    const help = (await ws.run(['--help'])).stdout;
    const listed = [...help.split('Commands:')[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((match) => match[1]!).filter((name) => name !== 'help');
    expect(await complete(script, ['jraid', ''], ws.dir)).toEqual(expect.arrayContaining(listed));
    expect(await complete(script, ['jraid', 'sta'], ws.dir)).toEqual(['status']);
    expect(await complete(script, ['jraid', 'create', '--le'], ws.dir)).toEqual(['--level']);
    expect(await complete(script, ['jraid', 'replace', 'r5', 'a.img', '--w'], ws.dir)).toEqual(['--with']);
    expect(await complete(script, ['jraid', 'monitor', '--pro'], ws.dir)).toEqual(['--program']);
    expect(await complete(script, ['jraid', 'create', '-'], ws.dir)).toEqual(expect.arrayContaining(['-l', '-n', '--json', '--help']));
    writeFileSync(ws.path('member-a.img'), '');
    expect(await complete(script, ['jraid', 'examine', 'member-'], ws.dir)).toEqual(['member-a.img']);
    expect(await complete(script, ['jraid', 'completion', ''], ws.dir)).toEqual(['bash', 'zsh']);
  });

  it('zsh: every command with its options; an unknown shell is refused', async () => {
    ws = workspace();
    const zsh = await ws.run(['completion', 'zsh']);
    expect(zsh.exitCode).toBe(EXIT.OK);
    expect(zsh.stdout.startsWith('#compdef jraid\n')).toBe(true);
    for (const name of ['create', 'status', 'replace', 'monitor', 'iostat', 'zero-superblock']) expect(zsh.stdout).toMatch(new RegExp(`^    '${name}:`, 'm'));
    expect(zsh.stdout).toContain("create) _arguments '--level[RAID level\\: 4, 5 or 6]:level:'");
    if (existsSync('/usr/bin/zsh') || existsSync('/bin/zsh')) {
      writeFileSync(ws.path('_jraid'), zsh.stdout);
      expect((await execa('zsh', ['-n', ws.path('_jraid')], { reject: false })).exitCode).toBe(0);
    }
    const fish = await ws.run(['completion', 'fish']);
    expect(fish.exitCode).toBe(EXIT.USAGE);
    expect(errorLine(fish).code).toBe('E_USAGE');
  });
});
