import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError } from 'commander';
import { commands } from './commands';
import { isUserError } from '@l2l/core';
import { createContext, systemError, type CliContext, type MainOptions } from './context';

/** Exit codes: success, a problem the user can fix (bad config, missing plugin), a malformed command line. */
export const EXIT_OK = 0;
export const EXIT_USER_ERROR = 1;
export const EXIT_USAGE = 2;
/** A bug in l2l (or a plugin's code that is not a user error): "internal error", its stack with --verbose. */
export const EXIT_INTERNAL = 3;

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The `l2l` program with every command registered; output goes through `ctx`, errors throw. */
export function createProgram(ctx: CliContext): Command {
  const program = new Command('l2l');
  program
    .description('l2l: learning to learn by gradient descent by gradient descent.\nMeta-train learned optimizers on task families and compare them with tuned baselines.')
    .version(version(), '-V, --version', 'print the version')
    .option('--verbose', 'print stack traces with errors')
    .option('--allow-plugin-paths', 'also load plugins named by absolute paths or paths outside the config\'s project (plugins are code: only ones you trust)')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    // Settings below are inherited by the commands registered after them.
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.io.stdout(s), writeErr: (s) => ctx.io.stderr(s) })
    .showHelpAfterError('(add --help for usage)')
    .allowExcessArguments(false)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ l2l list                         every registered component and its defaults',
        '  $ l2l validate experiments/quadratic.json',
        '  $ l2l schema > experiment.schema.json',
        '',
        'Run "l2l <command> --help" for a command\'s options.',
      ].join('\n'),
    );
  for (const register of commands) register(program, ctx);
  return program;
}

/**
 * Runs the CLI on `argv` (without `node` and the script) and resolves to the exit code; never calls
 * `process.exit`. 0: success; 1: a user error or a failure of the machine (a full disk): one line per problem
 * naming the file, component, field or path; 2: a usage error (commander's message); 3: an internal error
 * ("internal error: ..."). Stack traces only with `--verbose`.
 */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const ctx = createContext(options, argv.includes('--verbose'), { allowOutsidePaths: argv.includes('--allow-plugin-paths') });
  try {
    const program = createProgram(ctx);
    await program.parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has already printed its message (or the help / version).
      return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    ctx.printError(e);
    return isUserError(e) || systemError(e) ? EXIT_USER_ERROR : EXIT_INTERNAL;
  }
}
