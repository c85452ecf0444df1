import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ContainerModule } from 'inversify';
import { validateWithSchema, type JsonSchema } from './schema/validate';
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

/** npm's rule for package names (scoped or not). */
const PACKAGE_NAME = /^(@[a-z0-9~-][a-z0-9._~-]*\/)?[a-z0-9~-][a-z0-9._~-]*$/;

/** Where plugins may come from besides installed packages and paths inside the config's project. */
export interface PluginTrust {
  /** Also load plugins named by absolute paths or by relative paths that leave the project (`--allow-plugin-paths`). */
  allowOutsidePaths?: boolean;
}

/** The project a config belongs to: the nearest directory upwards holding a package.json (else the config's own). */
export function projectRoot(baseDir: string): string {
  for (let dir = path.resolve(baseDir); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(baseDir);
  }
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * A package's directory as Node would find it from `baseDir` (node_modules of each directory upwards), read from the
 * file system rather than through `require.resolve('<name>/package.json')`, which a package's `exports` may forbid.
 */
export function findPackageDir(packageName: string, baseDir: string): string | null {
  for (let dir = path.resolve(baseDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', packageName);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return null;
  }
}

/** The package.json of a package directory; errors name the plugin and the file. */
export function readPackageManifest(dir: string, what: string): { name?: string; l2l?: { plugin?: string }; main?: string; exports?: unknown; dependencies?: Record<string, string>; devDependencies?: Record<string, string> } {
  const manifestPath = path.join(dir, 'package.json');
  try {
    const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
    if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) throw new Error('not a JSON object');
    return manifest;
  } catch (e) {
    throw new UserError(`${what}: cannot read ${manifestPath}: ${(e as Error).message}`);
  }
}

/** The entry `exports` names for require (`"."` → require/node/default), if any. */
function exportsEntry(exportsField: unknown): string | undefined {
  const pick = (x: unknown): string | undefined => {
    if (typeof x === 'string') return x;
    if (Array.isArray(x)) return x.map(pick).find((v) => v !== undefined);
    if (x && typeof x === 'object') {
      const o = x as Record<string, unknown>;
      for (const k of ['require', 'node', 'default']) if (k in o) return pick(o[k]);
    }
    return undefined;
  };
  if (typeof exportsField === 'string' || Array.isArray(exportsField)) return pick(exportsField);
  if (exportsField && typeof exportsField === 'object') {
    const o = exportsField as Record<string, unknown>;
    return '.' in o ? pick(o['.']) : Object.keys(o).some((k) => k.startsWith('.')) ? undefined : pick(o);
  }
  return undefined;
}

/**
 * The file a plugin package declares: `"l2l": { "plugin": "./dist/plugin.js" }` in package.json, else what its
 * `exports` give for ".", else its main entry. It must stay inside the package.
 */
function packageEntryFile(dir: string, packageName: string, where: string): string {
  const manifest = readPackageManifest(dir, `${where}plugin "${packageName}"`);
  const entry = manifest.l2l?.plugin ?? exportsEntry(manifest.exports) ?? manifest.main ?? 'index.js';
  const file = path.resolve(dir, entry);
  let resolved: string;
  try {
    resolved = require.resolve(file);
  } catch {
    throw new UserError(`${where}plugin "${packageName}": its package.json points at ${entry}, which does not exist (${file}); was the package built?`);
  }
  if (!isInside(fs.realpathSync(resolved), fs.realpathSync(dir))) {
    throw new UserError(`${where}plugin "${packageName}": its package.json points at ${entry}, outside the package (${resolved}); refused`);
  }
  return resolved;
}

/**
 * The file a plugin entry names: a package name, resolved from `baseDir` (the config's directory) as Node would;
 * or a relative path (`./plugins/mine`), which must stay inside the project holding the config. Absolute paths
 * and paths that leave the project are refused unless `trust.allowOutsidePaths`.
 */
function pluginFile(packageName: string, baseDir: string, where: string, trust: PluginTrust): string {
  const isPath = packageName.startsWith('./') || packageName.startsWith('../') || packageName === '.' || packageName === '..' || path.isAbsolute(packageName);
  if (!isPath) {
    if (!PACKAGE_NAME.test(packageName)) {
      throw new UserError(`${where}plugin "${packageName}" is neither a package name nor a relative path (./ or ../)`);
    }
    const dir = findPackageDir(packageName, baseDir);
    if (!dir) throw new UserError(`${where}plugin "${packageName}" is not installed (looked in node_modules from ${baseDir}); install it with: npm install ${packageName}`);
    return packageEntryFile(dir, packageName, where);
  }
  const target = path.resolve(baseDir, packageName);
  const project = projectRoot(baseDir);
  if (!trust.allowOutsidePaths) {
    if (path.isAbsolute(packageName)) {
      throw new UserError(`${where}plugin "${packageName}": absolute plugin paths are refused (plugins are code); name an installed package, a path inside ${project}, or pass --allow-plugin-paths`);
    }
    const real = fs.existsSync(target) ? fs.realpathSync(target) : target;
    if (!isInside(real, fs.realpathSync(project))) {
      throw new UserError(`${where}plugin "${packageName}": the path leaves the project ${project} (plugins are code); refused unless --allow-plugin-paths is given`);
    }
  }
  if (fs.existsSync(path.join(target, 'package.json'))) return packageEntryFile(target, packageName, where);
  try {
    return require.resolve(target);
  } catch {
    throw new UserError(`${where}plugin "${packageName}": ${target} does not exist`);
  }
}

/**
 * Resolves each plugin from `baseDir` (the config file's directory, as Node would from a user's project; see
 * `pluginFile` for what an entry may name), loads the module its package declares, checks that it is an l2l plugin and returns its container modules.
 * Each failure is one `UserError` that names the plugin.
 */
export function loadPlugins(entries: readonly PluginEntry[], baseDir: string, where = '', trust: PluginTrust = {}): LoadedPlugin[] {
  const prefix = where ? `${where}: ` : '';
  return entries.map((entry) => {
    const [packageName, rawOptions] = typeof entry === 'string' ? [entry, {}] : entry;
    const file = pluginFile(packageName, baseDir, prefix, trust);
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
    if (!plugin.optionsSchema && Object.keys(rawOptions ?? {}).length) {
      throw new UserError(`${prefix}plugin "${packageName}" takes no options (it declares no optionsSchema), got ${JSON.stringify(rawOptions).slice(0, 80)}`);
    }
    const options = plugin.optionsSchema ? validateWithSchema(plugin.optionsSchema, rawOptions, `${prefix}plugin "${packageName}" options`) : {};
    let modules: ContainerModule[];
    try {
      modules = plugin.modules(options);
    } catch (e) {
      throw new UserError(`${prefix}plugin "${packageName}" failed to register: ${(e as Error).message}`, { cause: e });
    }
    return { plugin, packageName, file, modules };
  });
}

/**
 * The plugins a project has installed: the dependencies (and devDependencies) in the package.json of the project
 * holding `baseDir` whose own package.json has an `l2l` field. Returned as plugin entries, in that order.
 */
export function installedPlugins(baseDir: string): string[] {
  const root = projectRoot(baseDir);
  if (!fs.existsSync(path.join(root, 'package.json'))) return [];
  const manifest = readPackageManifest(root, 'the project');
  const names = Object.keys({ ...(manifest.dependencies ?? {}), ...(manifest.devDependencies ?? {}) });
  return names.filter((name) => {
    const dir = PACKAGE_NAME.test(name) ? findPackageDir(name, root) : null;
    if (!dir) return false;
    try {
      return readPackageManifest(dir, name).l2l !== undefined;
    } catch {
      return false;
    }
  });
}
