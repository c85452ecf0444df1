import { checkOptionsSchema, validateWithSchema } from '../schema/validate';
import type { ComponentConfig, ModuleExport } from '../contracts/json';
import { UserError } from '../errors';
import { deriveSeed } from '../random';
import type { ComponentContribution, ComponentDefinition, ComponentKind, ComponentKinds, CreateContext } from './component';

export interface RegisteredComponent extends ComponentDefinition {
  /** The package that registered it. */
  readonly source: string;
}

/** Option defaults as the schema declares them (what `l2l list` shows). */
export function optionDefaults(def: ComponentDefinition): Record<string, unknown> {
  const props = (def.schema.properties ?? {}) as Record<string, { default?: unknown }>;
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(props)) if ('default' in p) out[k] = p.default;
  return out;
}

export type { ModuleExport } from '../contracts/json';

/**
 * Maps `(kind, type)` to a component. Filled from every package's `ComponentContribution`; a duplicate
 * type of the same kind is an error that names both packages.
 */
export class ComponentRegistry {
  private readonly byKey = new Map<string, RegisteredComponent>();
  /**
   * An exported function that returns a registry with the same components (or a promise of one), so that
   * worker threads (`training.workers`) build meta-optimizers as this thread does. Set by whoever assembled
   * the registry from loadable modules (@l2l/cli's `createWorkspace` points it at core's `registryFromPackages`
   * with the package and plugin names); undefined for a registry built in code.
   */
  rebuild?: ModuleExport;

  constructor(contributions: readonly ComponentContribution[] = []) {
    for (const c of contributions) this.addAll(c);
  }

  addAll(contribution: ComponentContribution): void {
    for (const def of contribution.components) this.add(def, contribution.source);
  }

  add(def: ComponentDefinition, source: string): void {
    const where = `${def.kind} "${def.type}" (${source})`;
    if (!def.type || !/^[a-z0-9][a-z0-9._-]*$/.test(def.type)) {
      throw new Error(`${where}: type must be lower-case kebab-case, got "${def.type}"`);
    }
    if (!def.description?.trim()) throw new Error(`${where}: description is empty`);
    checkOptionsSchema(def.schema, where);
    const key = `${def.kind}:${def.type}`;
    const existing = this.byKey.get(key);
    if (existing) {
      throw new UserError(`${def.kind} "${def.type}" is registered by both ${existing.source} and ${source}`);
    }
    this.byKey.set(key, { ...def, source });
  }

  has(kind: ComponentKind, type: string): boolean {
    return this.byKey.has(`${kind}:${type}`);
  }

  get(kind: ComponentKind, type: string): RegisteredComponent {
    const found = this.byKey.get(`${kind}:${type}`);
    if (!found) {
      const known = this.list(kind).map((c) => c.type);
      throw new UserError(`unknown ${kind} type "${type}"${known.length ? ` (known: ${known.join(', ')})` : ''}`);
    }
    return found;
  }

  /** Every registered component, sorted by kind then type. */
  list(kind?: ComponentKind): RegisteredComponent[] {
    return [...this.byKey.values()]
      .filter((c) => !kind || c.kind === kind)
      .sort((a, b) => (a.kind === b.kind ? a.type.localeCompare(b.type) : a.kind.localeCompare(b.kind)));
  }

  /**
   * Validated options with defaults applied, as a copy. `where` prefixes messages (a file name, say);
   * `label` is how the config refers to the component (`optimizee`, `evaluation.baselines[1]`).
   */
  resolveOptions(kind: ComponentKind, config: ComponentConfig, where = '', label: string = kind): Record<string, unknown> {
    const prefix = where ? `${where}: ` : '';
    if (!config || typeof config !== 'object' || typeof config.type !== 'string') {
      throw new UserError(`${prefix}${label} must be an object with a string "type"`);
    }
    if (!this.has(kind, config.type)) {
      const known = this.list(kind).map((c) => c.type);
      throw new UserError(`${prefix}${label}: unknown ${kind} type "${config.type}"${known.length ? ` (known: ${known.join(', ')})` : ''}`);
    }
    const def = this.get(kind, config.type);
    const labelled = label === kind ? `${kind} "${def.type}"` : `${label} (${kind} "${def.type}")`;
    return validateWithSchema(def.schema, config.options ?? {}, `${prefix}${labelled}`);
  }

  /** Validates the options and builds the component. */
  create<K extends ComponentKind>(kind: K, config: ComponentConfig, ctx: CreateContext, where = '', label: string = kind): ComponentKinds[K] {
    const options = this.resolveOptions(kind, config, where, label);
    const def = this.get(kind, config.type);
    const createNested = <N extends ComponentKind>(k: N, c: ComponentConfig, sub: string): ComponentKinds[N] =>
      this.create(k, c, { ...ctx, seed: deriveSeed(ctx.seed, 'nested', sub) }, where, `${label}.${sub}`);
    try {
      return def.create(options, { ...ctx, createNested }) as ComponentKinds[K];
    } catch (e) {
      // A plugin's component that fails to build is named with its plugin: the plugin's author has to fix it.
      if (def.source.startsWith('@l2l/')) throw e;
      const prefix = where ? `${where}: ` : '';
      throw new UserError(`${prefix}plugin "${def.source}": ${label} (${kind} "${def.type}") failed to build: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }
}
