import { validateWithSchema } from '../schema/validate';
import { createContainer } from '../container';
import { isPlugin } from '../plugins';
import { ComponentRegistry, type RegisteredComponent } from '../registry/registry';
import type { ComponentDefinition, ComponentKind } from '../registry/component';
import { checkMetaOptimizer } from './meta-optimizer';
import { checkOptimizer } from './optimizer';
import { checkTaskFamily } from './task-family';
import { checkEstimator } from './estimator';
import { checkSchedule } from './schedule';
import { attempt, ContractError, failer, type CheckOptions } from './util';

export interface PluginCheckOptions {
  /** The plugin's own options (as a config's `["name", {...}]` would pass them). */
  options?: Record<string, unknown>;
  /** Per component type, the options its check runs with (`{ rosenbrock: { options: { dims: 3 } } }`). */
  components?: Record<string, CheckOptions>;
}

const CHECKS: Record<ComponentKind, (def: ComponentDefinition, o: CheckOptions) => Promise<void>> = {
  optimizee: checkTaskFamily,
  optimizer: checkOptimizer,
  'meta-optimizer': checkMetaOptimizer,
  estimator: checkEstimator,
  schedule: checkSchedule,
};

/** The contract check of a component's kind (`checkTaskFamily` for an optimizee, and so on). */
export function checkComponent(definition: ComponentDefinition, opts: CheckOptions = {}): Promise<void> {
  const check = CHECKS[definition?.kind];
  if (!check) return Promise.reject(new ContractError(`checkComponent: unknown kind ${JSON.stringify(definition?.kind)} (known: ${Object.keys(CHECKS).join(', ')})`));
  return check(definition, opts);
}

/**
 * Loads a plugin as the CLI does (into a container, through the registry) and runs the matching check on
 * every component it registers by its kind: `checkTaskFamily`, `checkOptimizer`, `checkMetaOptimizer`,
 * `checkEstimator` or `checkSchedule`. Resolves to
 * the registered components.
 *
 * ```ts
 * import plugin from './index';
 * test('the plugin and its components honour the contracts', () => checkPlugin(plugin));
 * ```
 */
export async function checkPlugin(plugin: unknown, opts: PluginCheckOptions = {}): Promise<RegisteredComponent[]> {
  const fail = failer(`checkPlugin(${isPlugin(plugin) ? `"${plugin.name}"` : 'plugin'})`);
  if (!isPlugin(plugin)) return fail('not an l2l plugin: export default definePlugin({ name, components }) from @l2l/core');
  const options = plugin.optionsSchema
    ? attempt(fail, 'validating the plugin options', () => validateWithSchema(plugin.optionsSchema!, opts.options ?? {}, 'options'))
    : (opts.options ?? {});
  const modules = attempt(fail, 'modules(options)', () => plugin.modules(options));
  const registry = attempt(fail, 'registering its components', () => createContainer(...modules).get(ComponentRegistry));
  const components = registry.list().filter((c) => c.source === plugin.name);
  if (components.length === 0) fail('registers no component');
  for (const c of components) {
    const o = opts.components?.[c.type] ?? {};
    await checkComponent(c, o);
  }
  return components;
}
