import type * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensor-tree';
import type { ComponentConfig } from './json';
import type { Optimizer } from './optimizer';

/**
 * A learned optimizer: trainable weights φ and the optimizer they define. The engine differentiates the
 * optimizee's losses over an unroll with respect to `variables`, so `optimizer()` must use them (not
 * copies) in its updates. `optimizer(weights)` builds the same optimizer from given weights instead: what
 * evolution strategies (engine/estimators) evaluate at perturbed φ without touching the live variables.
 */
export interface MetaOptimizer {
  readonly type: string;
  /** `{type, options}` that, with the weights, rebuilds this meta-optimizer. Options have defaults applied. */
  config(): ComponentConfig;
  /** φ as trainable variables under stable names (`"lstm0/kernel"`). */
  readonly variables: Readonly<Record<string, tf.Variable>>;
  /** A copy of φ; the caller owns it. */
  getWeights(): NamedTensors;
  /** Sets φ from named tensors; names and shapes must match exactly. */
  setWeights(weights: NamedTensors): void;
  /**
   * The optimizer that φ defines. Without `weights` its updates are differentiable functions of `variables`;
   * with `weights` (the same names, shapes and dtype as `variables`; the caller keeps them and must keep them
   * alive while the optimizer is used) it reads those tensors and never the variables, which stay as they are.
   */
  optimizer(weights?: Readonly<Record<string, tf.Tensor>>): Optimizer;
  /**
   * True when `optimizer()` is coordinatewise: the update of each coordinate (scalar entry of the parameters)
   * depends only on that coordinate's own gradients, values and state, the weights φ and the step context
   * (step, loss, training), never on other coordinates: no normalisation, sum or maximum across coordinates.
   * Precisely: split the coordinates into any subsets and lay each out as any named tensors (any names,
   * shapes and order of its entries); `init` and then `update` run on each subset on its own, with the same
   * entries of the gradients and the same step contexts, give (to float rounding) the entries that running
   * them on all the coordinates at once gives. `training.workers` relies on it (it runs chunks of the
   * coordinates in worker threads, as one flat tensor each); `checkMetaOptimizer` tests the claim. Absent or
   * false: not claimed.
   */
  readonly coordinatewise?: boolean;
  dispose(): void;
}
