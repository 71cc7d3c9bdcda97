// The jraid command line: commands registered in one place, each a thin call into the engine;
// one top-level handler prints expected errors as one line and sets the documented exit code.

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, JraidError, isJraidError } from '../errors.js';
import { printError } from './output.js';
import { prepareStatusLines } from './progress.js';
import { setJsonCommand } from './json.js';
import { registerAssemble } from './commands/assemble.js';
import { registerCreate } from './commands/create.js';
import { registerDetail } from './commands/detail.js';
import { registerExamine } from './commands/examine.js';
import { registerIo } from './commands/io.js';
import { registerFailures } from './commands/failures.js';
import { registerRecover } from './commands/recover.js';
import { registerDaemon } from './commands/daemon.js';
import { registerZeroSuperblock } from './commands/zero-superblock.js';
import { registerStatus } from './commands/status.js';
import { registerReplace } from './commands/replace.js';
import { registerMonitor } from './commands/monitor.js';
import { registerIostat } from './commands/iostat.js';
import { registerCompletion } from './commands/completion.js';

const packageJson = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function main(argv: string[]): Promise<number> {
  const program = new Command('jraid')
    .description('user-space RAID 4/5/6 with a dirty-stripe journal (see jraid(8))')
    .version(packageJson.version, '-V, --version')
    .exitOverride()
    .showSuggestionAfterError(true)
    // Parse errors reach the one handler below as CommanderError, printed there as one line.
    .configureOutput({ outputError: () => {} });
  let pending: Promise<number> | undefined;
  const run = async (work: Promise<number>) => { pending = work; await work; };
  registerCreate(program, run);
  registerAssemble(program, run);
  registerDetail(program, run);
  registerExamine(program, run);
  registerIo(program, run);
  registerFailures(program, run);
  registerRecover(program, run);
  registerDaemon(program, run);
  registerZeroSuperblock(program, run);
  registerStatus(program, run);
  registerReplace(program, run);
  registerMonitor(program, run);
  registerIostat(program, run);
  registerCompletion(program, run);
  const json = argv.includes('--json');
  // Every --json document names its command, errors included (parse errors: when the command is known).
  const named = argv.find((arg) => !arg.startsWith('-'));
  setJsonCommand(program.commands.some((command) => command.name() === named) ? named! : null);
  try {
    refuseUnknownLongOptions(program, named, argv);
    await prepareStatusLines();
    await program.parseAsync(argv, { from: 'user' });
    if (!pending) {
      program.outputHelp();
      return EXIT_USAGE;
    }
    return await pending;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT_OK;
      if (error.code === 'commander.executeSubCommandAsync' || error.exitCode === 0) return error.exitCode;
      printError(usageError(error), json);
      return EXIT_USAGE;
    }
    if (isJraidError(error)) {
      printError(error, json);
      return error.exitCode;
    }
    // A bug: still one line (and the JSON error), with the stack only when asked for.
    if (process.env.JRAID_DEBUG) process.stderr.write(`${(error as Error)?.stack ?? String(error)}\n`);
    printError(new JraidError('E_INTERNAL', `internal error: ${(error as Error)?.message ?? String(error)}`, {
      hint: 'this is a bug in jraid: please report it with the command line (JRAID_DEBUG=1 shows the stack)',
    }), json);
    return EXIT_FAILED;
  }
}

/**
 * A misspelt option is named, with a suggestion, before anything else is checked (commander
 * would first complain that a required option is missing: `create --levle 5` should say
 * "did you mean --level?").
 */
function refuseUnknownLongOptions(program: Command, name: string | undefined, argv: string[]): void {
  const command = program.commands.find((candidate) => candidate.name() === name);
  if (!command) return;
  const known = new Set(['--help', '-h', ...command.options.flatMap((option) => [option.long, option.short].filter((flag): flag is string => !!flag))]);
  for (const arg of argv) {
    if (arg === '--') break;
    if (!arg.startsWith('--') && !/^-[a-zA-Z]$/.test(arg)) continue;
    const flag = arg.split('=')[0]!;
    // commander's own unknown-option error (with its suggestion); not in its typings.
    if (!known.has(flag)) (command as unknown as { unknownOption(flag: string): never }).unknownOption(flag);
  }
}

/** commander's "error: unknown option '--levle'\n(Did you mean --level?)" as one line with a code. */
function usageError(error: CommanderError): JraidError {
  const message = error.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').replace(/\((Did you mean [^)]*)\)/, (_, text: string) => `(${text.charAt(0).toLowerCase()}${text.slice(1)})`);
  return new JraidError('E_USAGE', message, { hint: 'see jraid --help, or jraid COMMAND --help' });
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
