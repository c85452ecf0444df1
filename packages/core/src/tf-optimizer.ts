import * as tf from '@tensorflow/tfjs-core';
import type { ComponentConfig } from './contracts/json';
import type { MetaOptimizer } from './contracts/meta-optimizer';
import type { Optimizer, OptimizerState } from './contracts/optimizer';
import { disposeSnapshot, readSnapshot } from './engine/checkpoint';
import { decodeWeights, encodeWeights, type WeightsManifest } from './engine/weights-io';
import { UserError } from './errors';
import type { ComponentRegistry } from './registry/registry';
import { disposeTree, mapTree, treeTensors, type NamedTensors, type TensorTree } from './tensor-tree';
import { initVariableState, updateVariables } from './variable-optimizer';
import { groupVariables, type ParameterGrouping } from './engine/per-group';

/** tfjs-core's `{name, tensor}`, which its index does not export. */
type NamedTensor = { name: string; tensor: tf.Tensor };

/** What a `TfOptimizer` is made of: a baseline, or a learned optimizer with its weights φ. */
export type TfOptimizerSpec =
  | { readonly kind: 'optimizer'; readonly component: ComponentConfig }
  | {
      readonly kind: 'meta-optimizer';
      readonly component: ComponentConfig;
      readonly weights: NamedTensors;
      /** Each variable's parameter group, for a per-group learned optimizer (kept in `getConfig`). */
      readonly groups?: ParameterGrouping;
    };

/**
 * `getConfig()`: everything needed to rebuild the optimizer, φ included, so that `model.save` and
 * `tf.models.modelFromJSON` carry a learned optimizer with no file beside them. Nested JSON is kept as strings:
 * tfjs-layers rewrites the keys of a saved optimizer config between camelCase and snake_case.
 */
interface TfOptimizerConfigDict extends tf.serialization.ConfigDict {
  kind: 'optimizer' | 'meta-optimizer';
  /** JSON of the `{type, options}` component. */
  component: string;
  /** JSON of the weights manifest and base64 of their values (learned optimizers only). */
  manifest: string | null;
  weights: string | null;
  /** JSON of the variables' parameter grouping (per-group learned optimizers), or null. */
  groups: string | null;
}

/**
 * Any l2l optimizer, learned or baseline, as a `tf.Optimizer`: pass it to `model.compile({optimizer})` and
 * train with `model.fit`/`fitDataset`, or call `minimize` as with `tf.train.adam()`. The functional state is
 * kept across tfjs-layers' `tf.tidy`. It is set up for the variables of its first update; later updates must
 * be for the same variables (one optimizer per model, as in tfjs). Serialisable: `getConfig` holds φ, and
 * `fromConfig` (what `tf.loadLayersModel` calls) rebuilds it with the registry given to `registerTfOptimizer`.
 */
export class TfOptimizer extends tf.Optimizer {
  static className = 'L2LOptimizer';
  /** Set by `registerTfOptimizer`: how `fromConfig` builds components. */
  private static registry: ComponentRegistry | undefined;

  private variables: Record<string, tf.Variable> | undefined;
  private state: OptimizerState | undefined;
  /** Slot values from `setWeights` before the first update, applied once the state exists. */
  private pending: NamedTensor[] | undefined;
  private iterationTensor: tf.Tensor | undefined;

  constructor(
    readonly optimizer: Optimizer,
    private readonly spec: TfOptimizerConfigDict,
    private readonly owned?: MetaOptimizer,
  ) {
    super();
  }

  /** What made it: `{type, options}` of the baseline or learned optimizer. */
  get component(): ComponentConfig {
    return JSON.parse(this.spec.component) as ComponentConfig;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const grads: Record<string, tf.Tensor> = Array.isArray(variableGradients)
      ? Object.fromEntries(variableGradients.filter((g) => g.tensor != null).map((g) => [g.name, g.tensor]))
      : variableGradients;
    if (this.variables === undefined) {
      // In the order they come (tfjs-layers: the model's weights in order), which `setWeights` relies on.
      const names = Object.keys(grads);
      const registered = tf.engine().registeredVariables;
      const variables: Record<string, tf.Variable> = {};
      for (const name of names) {
        const v = registered[name];
        if (v === undefined) throw new Error(`${TfOptimizer.className}: no variable named "${name}"`);
        if (v.trainable) variables[name] = v;
      }
      if (Object.keys(variables).length === 0) throw new Error(`${TfOptimizer.className} (${this.optimizer.name}): no trainable variables to update`);
      this.variables = variables;
      const grouping = this.spec.groups ? (JSON.parse(this.spec.groups) as ParameterGrouping) : undefined;
      this.state = initVariableState(this.optimizer, variables, groupVariables(variables, grouping, TfOptimizer.className));
      if (this.pending) this.restoreSlots(this.pending);
      this.pending = undefined;
    } else {
      const unknown = Object.keys(grads).filter((n) => !(n in this.variables!) && tf.engine().registeredVariables[n]?.trainable);
      if (unknown.length > 0) {
        throw new Error(
          `${TfOptimizer.className} (${this.optimizer.name}) was set up for the variables ${Object.keys(this.variables).join(', ')}; got gradients for ${unknown.join(', ')} too (use one optimizer per model)`,
        );
      }
    }
    this.state = updateVariables(this.optimizer, this.variables, this.state!, grads);
    this.incrementIterations();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...this.spec };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    _cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const registry = TfOptimizer.registry;
    if (registry === undefined) {
      throw new UserError(
        `${TfOptimizer.className}: no component registry to rebuild "${String(config.component)}"; call registerTfOptimizer(registry) first (importing @l2l/pretrained does it for the built-in optimizers)`,
      );
    }
    const c = config as TfOptimizerConfigDict;
    const component = JSON.parse(c.component) as ComponentConfig;
    if (c.kind === 'optimizer') return createTfOptimizer({ kind: 'optimizer', component }, registry) as unknown as T;
    if (c.kind !== 'meta-optimizer' || c.manifest === null || c.weights === null) {
      throw new UserError(`${TfOptimizer.className} config: kind must be "optimizer" or "meta-optimizer" (with manifest and weights)`);
    }
    const where = { manifest: `${TfOptimizer.className} config manifest`, data: `${TfOptimizer.className} config weights` };
    const weights = decodeWeights(JSON.parse(c.manifest) as WeightsManifest, Buffer.from(c.weights, 'base64'), where);
    try {
      const groups = c.groups ? (JSON.parse(c.groups) as ParameterGrouping) : undefined;
      return createTfOptimizer({ kind: 'meta-optimizer', component, weights, groups }, registry) as unknown as T;
    } finally {
      tf.dispose(Object.values(weights));
    }
  }

  /** The iteration count, then the slots in tree order (named `slots/<path>`, restored by position), as tf.train optimizers do. */
  override async getWeights(): Promise<NamedTensor[]> {
    // tfjs-layers' model.save never disposes the iteration scalar it gets (a leak with tf.train's optimizers too): the last one is freed here.
    this.iterationTensor?.dispose();
    const iterations = await this.saveIterations();
    this.iterationTensor = iterations.tensor;
    const out: NamedTensor[] = [iterations];
    if (this.state === undefined) return [...out, ...(this.pending ?? [])];
    return [...out, ...slotEntries(this.state.slots).map(([name, tensor]) => ({ name, tensor }))];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const slots = await this.extractIterations(weightValues);
    if (this.state === undefined) this.pending = slots.map(({ name, tensor }) => ({ name, tensor: tf.keep(tf.clone(tensor)) }));
    else this.restoreSlots(slots);
  }

  /** Restores slots by position (a reloaded model's variables have new names), each checked for its shape. */
  private restoreSlots(values: NamedTensor[]): void {
    const entries = slotEntries(this.state!.slots);
    if (entries.length !== values.length) {
      throw new UserError(`${TfOptimizer.className} (${this.optimizer.name}): ${values.length} saved optimizer weights for a state of ${entries.length} tensors`);
    }
    const old = this.state!;
    const index = new Map(entries.map(([, t], i) => [t, i]));
    const slots = mapTree(old.slots, (t) => {
      const saved = values[index.get(t)!]!;
      if (!tf.util.arraysEqual(saved.tensor.shape, t.shape)) {
        throw new UserError(`${TfOptimizer.className}: saved optimizer weight ${saved.name} has shape [${saved.tensor.shape}], expected [${t.shape}]`);
      }
      return tf.keep(tf.clone(saved.tensor));
    });
    this.state = { ...old, slots, step: this.iterations };
    disposeTree(old.slots);
    for (const v of this.pending ?? []) v.tensor.dispose();
  }

  override dispose(): void {
    if (this.state) disposeTree(this.state.slots);
    for (const v of this.pending ?? []) v.tensor.dispose();
    this.state = undefined;
    this.iterationTensor?.dispose();
    this.owned?.dispose();
    super.dispose();
  }

  /** Lets `fromConfig` (and so `tf.loadLayersModel` of a model compiled with a `TfOptimizer`) build components from `registry`. */
  static useRegistry(registry: ComponentRegistry): void {
    TfOptimizer.registry = registry;
  }
}

/** Every tensor of a slot tree under its path (`slots/0/h`), each once, in tree order. */
function slotEntries(slots: TensorTree): Array<[string, tf.Tensor]> {
  const out: Array<[string, tf.Tensor]> = [];
  const seen = new Set<tf.Tensor>();
  const go = (node: TensorTree, path: string) => {
    if (node instanceof tf.Tensor) {
      if (!seen.has(node)) out.push([path, node]);
      seen.add(node);
    } else if (Array.isArray(node)) node.forEach((n, i) => go(n, `${path}/${i}`));
    else if (node !== null && typeof node === 'object') for (const [k, v] of Object.entries(node)) go(v as TensorTree, `${path}/${k}`);
  };
  go(slots, 'slots');
  if (out.length !== treeTensors(slots).length) throw new Error('slot tree inconsistent');
  return out;
}

tf.serialization.registerClass(TfOptimizer);

/** Registers `TfOptimizer` with `tf.serialization` and has `fromConfig` build its components from `registry`. */
export function registerTfOptimizer(registry: ComponentRegistry): void {
  TfOptimizer.useRegistry(registry);
  tf.serialization.registerClass(TfOptimizer);
}

/**
 * A `tf.Optimizer` from a component: `{kind: 'optimizer', component: {type: 'adam', options: {...}}}`, or a
 * learned optimizer `{kind: 'meta-optimizer', component, weights}` (the weights are copied).
 */
export function createTfOptimizer(spec: TfOptimizerSpec, registry: ComponentRegistry, baseDir = process.cwd()): TfOptimizer {
  const component = JSON.stringify(spec.component);
  if (spec.kind === 'optimizer') {
    const optimizer = registry.create('optimizer', spec.component, { seed: 0, baseDir });
    const resolved = { type: spec.component.type, options: registry.resolveOptions('optimizer', spec.component) } as ComponentConfig;
    return new TfOptimizer(optimizer, { kind: 'optimizer', component: JSON.stringify(resolved), manifest: null, weights: null, groups: null });
  }
  const meta = registry.create('meta-optimizer', spec.component, { seed: 0, baseDir });
  try {
    meta.setWeights(spec.weights);
  } catch (e) {
    meta.dispose();
    throw new UserError(`learned optimizer ${component}: ${(e as Error).message}`, { cause: e });
  }
  const { manifest, data } = encodeWeights(spec.weights);
  const config = JSON.stringify(meta.config());
  const groups = spec.groups === undefined ? null : JSON.stringify(spec.groups);
  return new TfOptimizer(meta.optimizer(), { kind: 'meta-optimizer', component: config, manifest: JSON.stringify(manifest), weights: data.toString('base64'), groups }, meta);
}

/** A `tf.Optimizer` running the learned optimizer of a checkpoint (a run directory of `l2l train`, or a snapshot). */
export function tfOptimizerFromCheckpoint(checkpoint: string, registry: ComponentRegistry, options: { groups?: ParameterGrouping } = {}): TfOptimizer {
  const snapshot = readSnapshot(checkpoint);
  try {
    return createTfOptimizer({ kind: 'meta-optimizer', component: snapshot.metaOptimizer, weights: snapshot.weights, groups: options.groups }, registry);
  } finally {
    disposeSnapshot(snapshot);
  }
}
