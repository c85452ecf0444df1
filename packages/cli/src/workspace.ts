import * as path from 'node:path';
import type { Container, ContainerModule } from 'inversify';
import { baselinesModule } from '@l2l/baselines';
import {
  ComponentRegistry,
  componentProblemsOf,
  ConfigError,
  createContainer,
  errorProblems,
  experimentBaseDir,
  isUserError,
  loadPlugins,
  parseExperiment,
  pluginEntriesOf,
  readJsonFile,
  resolveExperiment,
  REBUILD_MODULE,
  UserError,
  type ExperimentConfig,
  type RegistryPackages,
  type JsonValue,
  type LoadedPlugin,
  type PluginEntry,
  type PluginTrust,
} from '@l2l/core';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';

/** The packages the CLI ships with, by name (what worker threads load). */
export const BUILTIN_PACKAGES = ['@l2l/optimizees', '@l2l/meta-optimizers', '@l2l/baselines'] as const;

/** The container modules of the packages the CLI ships with: every built-in component. */
export function builtinModules(): ContainerModule[] {
  return [optimizeesModule, metaOptimizersModule, baselinesModule];
}

/** A container with the built-in packages and some plugins loaded, and its component registry. */
export interface Workspace {
  readonly container: Container;
  readonly registry: ComponentRegistry;
  readonly plugins: readonly LoadedPlugin[];
  /** Where plugins were resolved from and relative paths in options resolve from. */
  readonly baseDir: string;
}

export interface WorkspaceOptions {
  /** Plugins to load, as a config's `plugins` lists them. */
  plugins?: readonly PluginEntry[];
  /** Directory plugins are resolved from (default: the current directory). */
  baseDir?: string;
  /** Prefix of error messages (the config file). */
  where?: string;
  /** The built-in modules (default `builtinModules()`); tests pass their own. */
  modules?: readonly ContainerModule[];
  /** Where plugins may come from (`--allow-plugin-paths`). */
  trust?: PluginTrust;
}

/**
 * Loads the plugins (resolved from `baseDir`, as Node would from the user's project), builds the container
 * from the built-in modules and the plugins' modules, and fills the registry. A plugin that cannot load
 * or whose components the registry rejects is a `UserError` that names it.
 */
export function createWorkspace(options: WorkspaceOptions = {}): Workspace {
  const baseDir = path.resolve(options.baseDir ?? process.cwd());
  const plugins = loadPlugins(options.plugins ?? [], baseDir, options.where, options.trust);
  const container = createContainer(...(options.modules ?? builtinModules()), ...plugins.flatMap((p) => p.modules));
  let registry: ComponentRegistry;
  try {
    registry = container.get(ComponentRegistry);
  } catch (e) {
    // A plugin's component that breaks the registry's rules is the plugin author's (a user's) problem.
    const message = (e as Error)?.message ?? String(e);
    const prefix = options.where ? `${options.where}: ` : '';
    if (isUserError(e)) throw new UserError(`${prefix}${message}`, { cause: e }); // a type registered twice
    const culprit = plugins.find((p) => message.includes(`(${p.plugin.name})`));
    if (!culprit) throw e;
    throw new UserError(`${prefix}plugin "${culprit.packageName}" registers an invalid component: ${message}`, { cause: e });
  }
  // Worker threads (training.workers) rebuild this registry from the built-in packages' names and the plugins
  // (core's registryFromPackages), when it holds the built-in packages.
  if (isBuiltin(options.modules)) {
    const args: RegistryPackages = { packages: [...BUILTIN_PACKAGES], resolveFrom: __dirname, plugins: [...(options.plugins ?? [])], baseDir, trust: { ...options.trust } };
    registry.rebuild = { module: REBUILD_MODULE, export: 'registryFromPackages', args: args as unknown as JsonValue };
  }
  return { container, registry, plugins, baseDir };
}

/** No modules given, or exactly the built-in ones (what the CLI passes by default). */
function isBuiltin(modules: readonly ContainerModule[] | undefined): boolean {
  const builtin = builtinModules();
  return !modules || (modules.length === builtin.length && modules.every((m, i) => m === builtin[i]));
}

/** An experiment file, read and shape-checked, with its plugins loaded (components not yet validated). */
export interface ExperimentWorkspace extends Workspace {
  /** The path as given (what messages show). */
  readonly file: string;
  /** The absolute path. */
  readonly path: string;
  /** The config with the experiment's defaults applied; component options as written. */
  readonly config: ExperimentConfig;
}

/** An experiment file fully validated: `experiment` has every component's options resolved. */
export interface LoadedExperiment extends ExperimentWorkspace {
  /** The resolved experiment (what a checkpoint stores). */
  readonly experiment: ExperimentConfig;
}

export interface OpenOptions {
  /** Directory a relative `file` is resolved from (default: the current directory). */
  cwd?: string;
  modules?: readonly ContainerModule[];
  trust?: PluginTrust;
  /** false: load none of the config's plugins (`l2l validate --no-plugins`: no plugin code runs). */
  plugins?: boolean;
}

/** Reads and shape-checks an experiment file and loads its plugins from the file's directory. */
export function openExperiment(file: string, options: OpenOptions = {}): ExperimentWorkspace {
  const abs = path.resolve(options.cwd ?? process.cwd(), file);
  const raw = readJsonFileAs(abs, file);
  let config: ExperimentConfig;
  try {
    config = parseExperiment(raw, file);
  } catch (e) {
    if (!isUserError(e)) throw e;
    throw withComponentProblems(e, raw, file, abs, options);
  }
  const workspace = createWorkspace({
    plugins: options.plugins === false ? [] : config.plugins,
    baseDir: experimentBaseDir(abs),
    where: file,
    modules: options.modules,
    trust: options.trust,
  });
  return { ...workspace, file, path: abs, config };
}

/**
 * A config whose shape is invalid still has its components' options checked, so that one run lists every problem:
 * against the built-in components and, when its `plugins` field is valid and loads (and plugins are allowed), the
 * plugins' too; components of a plugin that could not be loaded are left unchecked.
 */
function withComponentProblems(shapeError: unknown, raw: unknown, file: string, abs: string, options: OpenOptions): unknown {
  const shape = errorProblems(shapeError);
  const problems = [...shape];
  const entries = options.plugins === false ? [] : pluginEntriesOf(raw);
  const open = (plugins: PluginEntry[]) => createWorkspace({ plugins, baseDir: experimentBaseDir(abs), where: file, modules: options.modules, trust: options.trust });
  // Unknown types are reported only when every plugin the config lists is loaded.
  let complete = entries !== undefined && options.plugins !== false;
  let registry: ComponentRegistry;
  try {
    registry = open(entries ?? []).registry;
  } catch (e) {
    if (!isUserError(e)) throw e;
    problems.push(...errorProblems(e)); // a plugin that does not load; the built-in components are still checked
    registry = open([]).registry;
    complete = false;
  }
  problems.push(...componentProblemsOf(raw, registry, file, { skipUnknownTypes: !complete }));
  return problems.length > shape.length ? new ConfigError(problems.join('; '), problems, { cause: shapeError }) : shapeError;
}

/**
 * Everything `train` and `eval` need from a config file: reads it, checks its shape, loads its plugins
 * from its directory, builds the container and registry, and validates every component's options.
 * Every problem is a `UserError` (a `ConfigError` listing them when there are several).
 */
export function loadExperiment(file: string, options: OpenOptions = {}): LoadedExperiment {
  const ws = openExperiment(file, options);
  return { ...ws, experiment: resolveExperiment(ws.config, ws.registry, file) };
}

/** `readJsonFile`, with messages naming the file as the user gave it. */
function readJsonFileAs(abs: string, shown: string): unknown {
  try {
    return readJsonFile(abs);
  } catch (e) {
    if (isUserError(e) && abs !== shown) {
      const msg = (e as Error).message;
      throw new UserError(msg.startsWith(abs) ? shown + msg.slice(abs.length) : msg, { cause: e });
    }
    throw e;
  }
}
