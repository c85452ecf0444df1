import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type Optimizer } from '@l2l/core';
import { elementwiseOptimizer, learningRateSchema, optimizerName, resolveOptions } from './common';

export interface SgdOptions {
  learningRate: number;
}

/** Plain gradient descent, as `tf.train.sgd`: θ ← θ − lr·g. No slots. */
export const sgdComponent = defineComponent<SgdOptions>()({
  kind: 'optimizer',
  type: 'sgd',
  description: 'Stochastic gradient descent: θ ← θ − lr·g (as tf.train.sgd)',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      learningRate: learningRateSchema(0.01),
    },
  },
  create: (options) => sgdOptimizer(options),
});

/** SGD as a functional optimizer; options are validated and defaulted (`learningRate` 0.01). */
export function sgdOptimizer(options: Partial<SgdOptions> = {}): Optimizer {
  const o = resolveOptions(sgdComponent, options);
  return elementwiseOptimizer(optimizerName(sgdComponent, o), {
    init: () => ({}),
    apply: (param, grad, _slots, _t, lrScale) => ({ param: tf.sub(param, tf.mul(grad, o.learningRate * lrScale)), slots: {} }),
  });
}
