import type * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensor-tree';
import type { ComponentConfig } from './json';
import type { Optimizer } from './optimizer';

/**
 * A learned optimizer: trainable weights φ and the optimizer they define. The engine differentiates the
 * optimizee's losses over an unroll with respect to `variables`, so `optimizer()` must use them (not
 * copies) in its updates.
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
  /** The optimizer that φ defines; its updates are differentiable functions of `variables`. */
  optimizer(): Optimizer;
  dispose(): void;
}
