import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ContainerModule } from 'inversify';
import { validateWithSchema, type JsonSchema } from './config/validate';
import { componentsModule } from './container';
import { UserError } from './errors';
import type { ComponentDefinition } from './registry/component';

const BRAND = Symbol.for('l2l.plugin');

/** A package of components the CLI (or a user's pipeline) can load by name. Make one with `definePlugin`. */
export interface L2LPlugin<O = any> {
  readonly [BRAND]: true;
  readonly name: string;
  readonly description?: string;
  /** JSON Schema of the options a config may pass (`["my-plugin", {...}]`). */
  readonly optionsSchema?: JsonSchema;
  /** Container modules to load, given validated options. */
  modules(options: O): ContainerModule[];
}

export interface PluginSpec<O> {
  /** Package name; shown in `l2l list` and in duplicate-registration errors. */
  name: string;
  description?: string;
  optionsSchema?: JsonSchema;
  /** The components this plugin registers (or a function of its options that returns them). */
  components?: readonly ComponentDefinition[] | ((options: O) => readonly ComponentDefinition[]);
  /** Further container modules, for plugins that bind more than components. */
  modules?: (options: O) => ContainerModule[];
}

/** `export default definePlugin({ name: 'my-l2l-plugin', components: [myFamily] })`. */
export function definePlugin<O = Record<string, never>>(spec: PluginSpec<O>): L2LPlugin<O> {
  if (!spec.name) throw new Error('definePlugin: name is required');
  return {
    [BRAND]: true,
    name: spec.name,
    description: spec.description,
    optionsSchema: spec.optionsSchema,
    modules(options: O) {
      const components = typeof spec.components === 'function' ? spec.components(options) : spec.components ?? [];
      return [componentsModule({ source: spec.name, components }), ...(spec.modules?.(options) ?? [])];
    },
  };
}

export function isPlugin(value: unknown): value is L2LPlugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true &&
    typeof (value as L2LPlugin).modules === 'function';
}

/** How a config names a plugin: `"name"` or `["name", { options }]`. */
export type PluginEntry = string | [string, Record<string, unknown>];

export interface LoadedPlugin {
  readonly plugin: L2LPlugin;
  /** Package name as the config gave it. */
  readonly packageName: string;
  /** The file that was loaded. */
  readonly file: string;
  readonly modules: ContainerModule[];
}

/** The file a plugin package declares: `"l2l": { "plugin": "./dist/plugin.js" }` in package.json, else its main entry. */
function pluginFile(packageName: string, baseDir: string, where: string): string {
  let manifestPath: string;
  try {
    manifestPath = require.resolve(`${packageName}/package.json`, { paths: [baseDir] });
  } catch {
    throw new UserError(`${where}plugin "${packageName}" is not installed (looked in node_modules from ${baseDir}); install it with: npm install ${packageName}`);
  }
  const dir = path.dirname(manifestPath);
  let manifest: { l2l?: { plugin?: string }; main?: string };
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch (e) {
    throw new UserError(`${where}plugin "${packageName}": cannot read ${manifestPath}: ${(e as Error).message}`);
  }
  const entry = manifest.l2l?.plugin ?? manifest.main ?? 'index.js';
  const file = path.resolve(dir, entry);
  try {
    return require.resolve(file);
  } catch {
    throw new UserError(`${where}plugin "${packageName}": its package.json points at ${entry}, which does not exist (${file}); was the package built?`);
  }
}

/**
 * Resolves each plugin from `baseDir` (the config file's directory, as Node would from a user's project),
 * loads the module its package declares, checks that it is an l2l plugin and returns its container modules.
 * Each failure is one `UserError` that names the plugin.
 */
export function loadPlugins(entries: readonly PluginEntry[], baseDir: string, where = ''): LoadedPlugin[] {
  const prefix = where ? `${where}: ` : '';
  return entries.map((entry) => {
    const [packageName, rawOptions] = typeof entry === 'string' ? [entry, {}] : entry;
    const file = pluginFile(packageName, baseDir, prefix);
    let exported: unknown;
    try {
      exported = require(file);
    } catch (e) {
      throw new UserError(`${prefix}plugin "${packageName}" failed to load: ${(e as Error).message}`, { cause: e });
    }
    const mod = exported as { default?: unknown; plugin?: unknown };
    const plugin = [mod?.default, mod?.plugin, exported].find(isPlugin);
    if (!plugin) {
      throw new UserError(`${prefix}plugin "${packageName}": ${file} does not export an l2l plugin (export default definePlugin({...}) from @l2l/core)`);
    }
    const options = plugin.optionsSchema
      ? validateWithSchema(plugin.optionsSchema, rawOptions, `${prefix}plugin "${packageName}" options`)
      : rawOptions;
    let modules: ContainerModule[];
    try {
      modules = plugin.modules(options);
    } catch (e) {
      throw new UserError(`${prefix}plugin "${packageName}" failed to register: ${(e as Error).message}`, { cause: e });
    }
    return { plugin, packageName, file, modules };
  });
}
