import * as path from 'node:path';
import type { Command } from 'commander';
import type { ContainerModule } from 'inversify';
import { errorProblems, installedPlugins, isUserError, type PluginEntry, type PluginTrust } from '@l2l/core';
import { builtinModules, createWorkspace, loadExperiment, openExperiment, type ExperimentWorkspace, type LoadedExperiment, type Workspace } from './workspace';

/** Where the CLI writes: raw text, as `process.stdout.write` takes it. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** What `main` may be given besides argv; everything defaults to the real process. */
export interface MainOptions extends Partial<CliIo> {
  /** Directory relative paths on the command line resolve from (default `process.cwd()`). */
  cwd?: string;
  /** Built-in container modules (default: every package the CLI ships with); tests inject their own. */
  modules?: readonly ContainerModule[];
}

/** What every command gets: output, the working directory and the workspace set-up. */
export interface CliContext {
  readonly io: CliIo;
  /** Writes a line (a newline is added) to stdout. */
  out(line?: string): void;
  /** Writes a line (a newline is added) to stderr. */
  err(line?: string): void;
  readonly cwd: string;
  /** `--verbose` was given: errors are printed with their stack traces. */
  readonly verbose: boolean;
  /** stderr is the process's own terminal: progress bars may be drawn there (else plain lines). */
  readonly tty: boolean;
  /** Prints an error as `main` does: a user error's problems one per line (stacks with --verbose), anything else with its stack. */
  printError(e: unknown): void;
  /** Exit code `main` returns when the command finishes without throwing (default 0). */
  exitCode: number;
  /** The built-in modules plus the plugins listed in `configFile` (if given; else those the project installed), with the registry. */
  workspace(configFile?: string): Workspace;
  /** Reads and shape-checks a config, loads its plugins (unless `plugins: false`); component options are not yet validated. */
  openExperiment(configFile: string, options?: { plugins?: boolean }): ExperimentWorkspace;
  /** `openExperiment` plus full validation: what `train` and `eval` start from. */
  loadExperiment(configFile: string): LoadedExperiment;
  /** The built-in modules plus `plugins` resolved from `baseDir` (an experiment that arrived without its file). */
  workspaceFor(plugins: readonly PluginEntry[] | undefined, baseDir: string, where: string): Workspace;
}

/** A command's registration: adds itself (options, help, action) to the program. */
export type CommandRegistrar = (program: Command, ctx: CliContext) => void;

const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/**
 * A failure of the machine rather than of l2l (a full disk, a permission, a file that went away), as one line
 * naming the path; null for anything else.
 */
export function systemError(e: unknown): string | null {
  const x = e as NodeJS.ErrnoException;
  // Not `instanceof Error`: Node's own errors may come from another realm (a vm context, jest's).
  if (typeof x !== 'object' || x === null || typeof x.code !== 'string' || !(x.code in SYSTEM_ERRORS)) return null;
  const where = x.path ? `${x.path}: ` : '';
  return `${where}${x.syscall ? `cannot ${x.syscall}: ` : ''}${SYSTEM_ERRORS[x.code]} (${x.code})`;
}

export function createContext(options: MainOptions = {}, verbose = false, trust: PluginTrust = {}): CliContext {
  const io: CliIo = {
    stdout: options.stdout ?? ((s) => void process.stdout.write(s)),
    stderr: options.stderr ?? ((s) => void process.stderr.write(s)),
  };
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const modules = options.modules ?? builtinModules();
  const err = (line = '') => io.stderr(line + '\n');
  return {
    io,
    out: (line = '') => io.stdout(line + '\n'),
    err,
    cwd,
    verbose,
    tty: options.stderr === undefined && process.stderr.isTTY === true,
    printError: (e) => {
      const system = systemError(e);
      if (isUserError(e)) {
        for (const line of errorProblems(e)) err(line);
      } else if (system) {
        err(system);
      } else {
        err(`internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}${verbose ? '' : ' (run with --verbose for the stack trace; please report it)'}`);
      }
      if (verbose) for (let x: unknown = e; x instanceof Error; x = x.cause) err(x.stack ?? String(x));
    },
    exitCode: 0,
    // Without a config: the plugins the project in the working directory has installed.
    workspace: (configFile) =>
      configFile ? openExperiment(configFile, { cwd, modules, trust }) : createWorkspace({ baseDir: cwd, modules, trust, plugins: installedPlugins(cwd), where: 'package.json' }),
    openExperiment: (configFile, o) => openExperiment(configFile, { cwd, modules, trust, plugins: o?.plugins }),
    loadExperiment: (configFile) => loadExperiment(configFile, { cwd, modules, trust }),
    workspaceFor: (plugins, baseDir, where) => createWorkspace({ plugins: [...(plugins ?? [])], baseDir, where, modules, trust }),
  };
}
