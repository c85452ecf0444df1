import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState } from './contracts/optimizer';
import { cloneNamed, disposeTree, tidyTree, type NamedTensors } from './tensor-tree';

/**
 * Drives a functional optimizer (a baseline, or `metaOptimizer.optimizer()` of a trained learned optimizer)
 * over `tf.Variable`s: how you train your own TensorFlow.js model with l2l. For a tfjs-layers model pass
 * `model.trainableWeights.map((w) => w.read())` (the underlying variables), or a record of named variables.
 *
 *   const opt = new VariableOptimizer(lstm.optimizer(), model.trainableWeights.map((w) => w.read()));
 *   for (const batch of batches) opt.minimize(() => tf.losses.softmaxCrossEntropy(batch.ys, model.predict(batch.xs)));
 */
export class VariableOptimizer {
  private readonly variables: Record<string, tf.Variable>;
  private state: OptimizerState;

  constructor(
    readonly optimizer: Optimizer,
    variables: readonly tf.Variable[] | Readonly<Record<string, tf.Variable>>,
  ) {
    const entries = Array.isArray(variables) ? variables.map((v) => [v.name, v] as const) : Object.entries(variables);
    if (entries.length === 0) throw new Error('VariableOptimizer: no variables to optimize');
    this.variables = Object.fromEntries(entries);
    this.state = tidyTree(() => optimizer.init(this.values()));
  }

  /** Number of updates taken. */
  get step(): number {
    return this.state.step;
  }

  private values(): NamedTensors {
    return cloneNamed(this.variables);
  }

  /**
   * One update: the gradients of `loss` with respect to the variables, the optimizer's step, and the new
   * values written back into the variables. Returns the loss before the update.
   */
  minimize(loss: () => tf.Scalar): number {
    const prev = this.state;
    let value = NaN;
    const next = tidyTree(() => {
      const { value: l, grads } = tf.variableGrads(loss, Object.values(this.variables));
      const named: NamedTensors = {};
      for (const [name, v] of Object.entries(this.variables)) {
        const g = grads[v.name];
        named[name] = g ?? tf.zerosLike(v); // a variable the loss does not use gets a zero gradient
      }
      value = l.dataSync()[0]!;
      // The variables may have been changed from outside (e.g. by loading weights): start from their values.
      const current = { ...prev, params: this.values() };
      const updated = this.optimizer.update(current, named, { step: prev.step, loss: l, training: false });
      for (const [name, v] of Object.entries(this.variables)) v.assign(updated.params[name]!);
      return updated;
    });
    disposeTree(prev, next);
    this.state = next;
    return value;
  }

  /** Frees the optimizer's state (not the variables). */
  dispose(): void {
    disposeTree(this.state);
  }
}
