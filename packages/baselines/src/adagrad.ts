import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type Optimizer } from '@l2l/core';
import { elementwiseOptimizer, epsilonSchema, learningRateSchema, optimizerName, resolveOptions } from './common';

export interface AdagradOptions {
  learningRate: number;
  initialAccumulatorValue: number;
  epsilon: number;
}

/** Adagrad as a functional optimizer, with `tf.train.adagrad`'s update (see `adagradOptimizer`). */
export const adagradComponent = defineComponent<AdagradOptions>()({
  kind: 'optimizer',
  type: 'adagrad',
  description: 'Adagrad: s ← s + g², θ ← θ − lr·g/√(s + ε) (as tf.train.adagrad)',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      learningRate: learningRateSchema(0.01),
      initialAccumulatorValue: {
        type: 'number',
        minimum: 0,
        default: 0.1,
        description: 'Starting value of the accumulated squared gradients s (tf.train.adagrad default)',
      },
      epsilon: epsilonSchema('Added to s under the square root (tfjs adds its backend epsilon, 1e-7)'),
    },
  },
  create: (options) => adagradOptimizer(options),
});

/**
 * Adagrad: s ← s + g²; θ ← θ − lr·g/√(s + ε), slot `accumulator` starting at `initialAccumulatorValue`.
 * Defaults: `learningRate` 0.01 (tfjs has none), `initialAccumulatorValue` 0.1, `epsilon` 1e-7 (tfjs's backend
 * epsilon, which tf.train.adagrad always uses).
 */
export function adagradOptimizer(options: Partial<AdagradOptions> = {}): Optimizer {
  const o = resolveOptions(adagradComponent, options);
  return elementwiseOptimizer(optimizerName(adagradComponent, o), {
    init: (param) => ({ accumulator: tf.fill(param.shape, o.initialAccumulatorValue) }),
    apply: (param, grad, { accumulator }, _t, lrScale) => {
      const next = tf.add(accumulator, tf.square(grad));
      const step = tf.div(grad, tf.sqrt(tf.add(next, o.epsilon)));
      return { param: tf.sub(param, tf.mul(step, o.learningRate * lrScale)), slots: { accumulator: next } };
    },
  });
}
