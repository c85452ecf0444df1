import * as path from 'node:path';
import { ContainerModule } from 'inversify';
import { createContainer } from '../container';
import { loadPlugins, type PluginEntry, type PluginTrust } from '../plugins';
import { ComponentRegistry } from '../registry/registry';

/**
 * This module, built: what worker threads (training.workers) load to rebuild a registry. Computed from this
 * file's directory, so that the sources, run by ts-jest, name the built file too.
 */
export const REBUILD_MODULE = path.resolve(__dirname, '../../dist/pipeline/rebuild.js');

/** What `registryFromPackages` takes: plain JSON, so another thread can be given it. */
export interface RegistryPackages {
  /** Packages whose main module exports the `ContainerModule` of their components (`@l2l/optimizees`). */
  packages: string[];
  /** Directory the package names are resolved from (where they are installed). */
  resolveFrom: string;
  /** Plugins, as a config's `plugins` lists them, resolved from `baseDir` with `trust`. */
  plugins: PluginEntry[];
  baseDir: string;
  trust?: PluginTrust;
}

/** The ContainerModule(s) a package exports. */
function modulesOf(name: string, resolveFrom: string): ContainerModule[] {
  const exported = require(require.resolve(name, { paths: [resolveFrom] })) as Record<string, unknown>;
  const modules = Object.values(exported).filter((v): v is ContainerModule => v instanceof ContainerModule);
  if (!modules.length) throw new Error(`package "${name}" exports no ContainerModule (exports: ${Object.keys(exported).join(', ') || 'none'})`);
  return modules;
}

/**
 * A registry from package names and plugins: how worker threads rebuild the registry of the thread that
 * started them (ComponentRegistry.rebuild), knowing nothing of the CLI that assembled it.
 */
export function registryFromPackages(args: RegistryPackages): ComponentRegistry {
  const modules = args.packages.flatMap((name) => modulesOf(name, args.resolveFrom));
  const plugins = loadPlugins(args.plugins, args.baseDir, '', args.trust);
  return createContainer(...modules, ...plugins.flatMap((p) => p.modules)).get(ComponentRegistry);
}
