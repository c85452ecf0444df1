import type * as tf from '@tensorflow/tfjs-core';
import type { ComponentConfig, JsonObject, MetaOptimizer, NamedTensors, Optimizer } from '@l2l/core';
import { GivenWeights, NamedVariables, type WeightSource } from './weights';

/**
 * What the learned optimizers here share: validated options, the weights φ as named variables, and
 * config/weight I/O. A subclass draws its initial weights and defines `build(source)`, the optimizer reading φ from
 * `source`: the variables, or the weights given to `optimizer(weights)`.
 */
export abstract class NamedWeightsMetaOptimizer<O extends object> implements MetaOptimizer {
  protected readonly weights: NamedVariables;

  /** Takes ownership of `initial` (named tensors that become the variables). */
  protected constructor(
    readonly type: string,
    readonly options: Readonly<O>,
    initial: NamedTensors,
  ) {
    this.weights = new NamedVariables(initial, `meta-optimizer "${type}"`);
  }

  get variables(): Readonly<Record<string, tf.Variable>> {
    return this.weights.variables;
  }

  config(): ComponentConfig {
    return { type: this.type, options: structuredClone(this.options) as unknown as JsonObject };
  }

  getWeights(): NamedTensors {
    return this.weights.getWeights();
  }

  setWeights(weights: NamedTensors): void {
    this.weights.setWeights(weights);
  }

  optimizer(weights?: Readonly<Record<string, tf.Tensor>>): Optimizer {
    return this.build(weights ? new GivenWeights(this.weights.variables, weights, `meta-optimizer "${this.type}"`) : this.weights);
  }

  /** The optimizer φ defines, reading φ from `source` only. */
  protected abstract build(source: WeightSource): Optimizer;

  dispose(): void {
    this.weights.dispose();
  }
}
