import * as tf from '@tensorflow/tfjs-core';
import { readsSynchronously } from './backend';
import type { FusedRun } from './contracts/fused';
import type { Optimizer, OptimizerState } from './contracts/optimizer';
import { flatLayout, flattenInto, fusedParameters, unflatten, type FlatLayout } from './engine/fused';
import { groupVariables, type ParameterGrouping } from './engine/per-group';
import { cloneNamed, disposeTree, keepTree, tidyTree, type NamedTensors } from './tensor-tree';

/**
 * A variable as it comes: a `tf.Variable`, or a tfjs-layers weight (`model.trainableWeights[i]`, whose
 * `read()` gives the variable). Structural, so that no tfjs-layers type is needed here.
 */
export type VariableLike = tf.Variable | { read(): tf.Tensor };

/** The `tf.Variable` behind a `VariableLike`; anything else is an error naming what was given. */
export function toVariable(v: VariableLike, where = 'VariableOptimizer'): tf.Variable {
  const variable = v instanceof tf.Variable ? v : typeof (v as { read?: unknown }).read === 'function' ? (v as { read(): tf.Tensor }).read() : v;
  if (!(variable instanceof tf.Variable)) {
    throw new Error(`${where}: expected tf.Variables or tfjs-layers weights (with read()), got ${Object.prototype.toString.call(variable)} (two copies of @tensorflow/tfjs-core loaded?)`);
  }
  return variable;
}

/**
 * A functional optimizer's state while it drives variables: its slots and step only (the parameters are the
 * variables themselves), every tensor kept (`tf.keep`) so that it outlives whatever `tf.tidy` the caller
 * (or tfjs-layers' `fit`) runs the update in.
 */
export function initVariableState(optimizer: Optimizer, variables: Readonly<Record<string, tf.Variable>>, groups?: Readonly<Record<string, string>>): OptimizerState {
  const state = tidyTree(() => optimizer.init(cloneNamed(variables), groups));
  return dropParams(state);
}

function dropParams(state: OptimizerState): OptimizerState {
  keepTree(state.slots);
  disposeTree(state.params, state.slots); // a slot may hold a parameter (a history of them, say)
  return { params: {}, slots: state.slots, step: state.step };
}

/**
 * One update: the optimizer's step from `state` (see `initVariableState`) with `grads` (by variable name; a
 * missing one counts as zero), the new values assigned to the variables. Returns the new state and frees the
 * old one; the caller keeps ownership of `grads`.
 */
export function updateVariables(
  optimizer: Optimizer,
  variables: Readonly<Record<string, tf.Variable>>,
  state: OptimizerState,
  grads: Readonly<Record<string, tf.Tensor | undefined | null>>,
  loss?: tf.Scalar,
): OptimizerState {
  const next = tidyTree(() => {
    const named: NamedTensors = {};
    // Cloned so that a state which stores a gradient owns it (tfjs-layers disposes the gradients it passes).
    for (const [name, v] of Object.entries(variables)) named[name] = grads[name] ? tf.clone(grads[name]!) : tf.zerosLike(v);
    // The variables may have been changed from outside (e.g. by loading weights): start from their values.
    const updated = optimizer.update({ ...state, params: cloneNamed(variables) }, named, { step: state.step, loss, training: false });
    for (const [name, v] of Object.entries(variables)) {
      const p = updated.params[name];
      if (p === undefined) throw new Error(`${optimizer.name}: update returned no parameter "${name}"`);
      v.assign(p);
    }
    return updated;
  });
  const kept = dropParams(next);
  disposeTree(state.slots, kept.slots);
  return kept;
}

/**
 * Drives a functional optimizer (a baseline, or `metaOptimizer.optimizer()` of a trained learned optimizer)
 * over `tf.Variable`s: how you train your own TensorFlow.js model with l2l in a loop of your own. For a
 * tfjs-layers model pass `model.trainableWeights` as they are, or use `TfOptimizer` with `model.fit`. Safe
 * inside your own `tf.tidy`.
 *
 *   const opt = new VariableOptimizer(lstm.optimizer(), model.trainableWeights);
 *   for (const batch of batches) opt.minimize(() => tf.losses.softmaxCrossEntropy(batch.ys, model.predict(batch.xs)));
 */
export class VariableOptimizer {
  private readonly variables: Record<string, tf.Variable>;
  private state: OptimizerState;
  /** With a fused kernel (options.kernel "auto"): the run that keeps the optimizer's state instead of `state`. */
  private readonly fused?: { run: FusedRun; layout: FlatLayout; steps: number };

  constructor(
    readonly optimizer: Optimizer,
    variables: readonly VariableLike[] | Readonly<Record<string, VariableLike>>,
    /**
     * kernel: "auto" (the default) updates through the optimizer's fused kernel where it has one; "tfjs" never.
     * groups: each variable's parameter group, for a per-group learned optimizer (engine/per-group.ts).
     */
    options: { kernel?: 'auto' | 'tfjs'; groups?: ParameterGrouping } = {},
  ) {
    const entries = Array.isArray(variables)
      ? (variables as readonly VariableLike[]).map((w) => toVariable(w)).map((v) => [v.name, v] as const)
      : Object.entries(variables as Readonly<Record<string, VariableLike>>).map(([k, w]) => [k, toVariable(w)] as const);
    if (entries.length === 0) throw new Error('VariableOptimizer: no variables to optimize');
    this.variables = Object.fromEntries(entries);
    const groups = groupVariables(this.variables, options.groups, 'VariableOptimizer');
    // The kernel takes the gradients on the host; on webgpu the tfjs update keeps them on the device.
    if (optimizer.fused && options.kernel !== 'tfjs' && readsSynchronously()) {
      const layout = flatLayout(this.variables);
      const parameters = fusedParameters({ parameterGroups: groups && (() => groups) }, layout);
      this.fused = { run: optimizer.fused.open(layout.total, { parameters }), layout, steps: 0 };
      this.state = { params: {}, slots: {}, step: 0 };
    } else this.state = initVariableState(optimizer, this.variables, groups);
  }

  /** Number of updates taken. */
  get step(): number {
    return this.fused ? this.fused.steps : this.state.step;
  }

  /** What updates the variables: the optimizer's fused kernel, or its tfjs `update`. */
  get path(): string {
    return this.fused ? `fused kernel, ${this.optimizer.fused!.description}` : 'tfjs';
  }

  /**
   * One update: the gradients of `loss` with respect to the variables, the optimizer's step, and the new
   * values written back into the variables. Returns the loss before the update.
   */
  minimize(loss: () => tf.Scalar): number {
    if (!readsSynchronously()) throw new Error(`VariableOptimizer.minimize returns the loss as a number, which the ${tf.getBackend()} backend cannot read synchronously: use minimizeAsync`);
    const value = this.update(loss);
    try {
      return value.dataSync()[0]!;
    } finally {
      value.dispose();
    }
  }

  /** `minimize` on any backend: the same update, the loss read asynchronously (what webgpu needs). */
  async minimizeAsync(loss: () => tf.Scalar): Promise<number> {
    const value = this.update(loss);
    try {
      return (await value.data())[0]!;
    } finally {
      value.dispose();
    }
  }

  /** One update; returns the loss before it (the caller disposes it). */
  private update(loss: () => tf.Scalar): tf.Scalar {
    const vars = Object.values(this.variables);
    const { value, grads } = tf.variableGrads(loss, vars);
    try {
      const byName: Record<string, tf.Tensor> = {};
      for (const [name, v] of Object.entries(this.variables)) if (grads[v.name]) byName[name] = grads[v.name]!;
      if (this.fused) this.fusedUpdate(byName);
      else this.state = updateVariables(this.optimizer, this.variables, this.state, byName, value);
      return value;
    } catch (e) {
      value.dispose();
      throw e;
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  private fusedUpdate(grads: Readonly<Record<string, tf.Tensor>>): void {
    const { run, layout } = this.fused!;
    // The variables may have been changed from outside (e.g. by loading weights): start from their values.
    const theta = new Float32Array(layout.total);
    flattenInto(this.variables, layout, theta);
    const g = new Float32Array(layout.total); // a variable the loss does not use gets a zero gradient
    layout.names.forEach((name, i) => {
      if (grads[name]) g.set(grads[name]!.dataSync() as Float32Array, layout.offsets[i]);
    });
    run.step(g, theta);
    const values = unflatten(theta, layout);
    for (const [name, v] of Object.entries(this.variables)) v.assign(values[name]!);
    disposeTree(values);
    this.fused!.steps++;
  }

  /** Frees the optimizer's state (not the variables). */
  dispose(): void {
    this.fused?.run.dispose();
    disposeTree(this.state);
  }
}
