import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type Optimizer } from '@l2l/core';
import { elementwiseOptimizer, learningRateSchema, optimizerName, rateSchema, resolveOptions, type ElementwiseRule } from './common';

export interface MomentumOptions {
  learningRate: number;
  momentum: number;
}

/**
 * Heavy-ball momentum exactly as `tf.train.momentum` (and TF's MomentumOptimizer):
 * a ← μ·a + g; θ ← θ − lr·a, or with Nesterov θ ← θ − lr·(g + μ·a). Slot `accumulation` starts at zero.
 */
export function momentumRule(learningRate: number, momentum: number, nesterov: boolean): ElementwiseRule<{ accumulation: tf.Tensor }> {
  return {
    init: (param) => ({ accumulation: tf.zerosLike(param) }),
    apply: (param, grad, { accumulation }, _t, lrScale) => {
      const next = tf.add(tf.mul(accumulation, momentum), grad);
      const step = nesterov ? tf.add(grad, tf.mul(next, momentum)) : next;
      return { param: tf.sub(param, tf.mul(step, learningRate * lrScale)), slots: { accumulation: next } };
    },
  };
}

/** The options of momentum and NAG (the same two). */
export const momentumSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    learningRate: learningRateSchema(0.01),
    momentum: rateSchema(0.9, 'Momentum coefficient μ: the fraction of the previous accumulation kept each step'),
  },
};

export const momentumComponent = defineComponent<MomentumOptions>()({
  kind: 'optimizer',
  type: 'momentum',
  description: 'Gradient descent with (heavy-ball) momentum: a ← μ·a + g, θ ← θ − lr·a (as tf.train.momentum)',
  schema: momentumSchema,
  create: (options) => momentumOptimizer(options),
});

/** Momentum as a functional optimizer; options are validated and defaulted (`learningRate` 0.01, `momentum` 0.9). */
export function momentumOptimizer(options: Partial<MomentumOptions> = {}): Optimizer {
  const o = resolveOptions(momentumComponent, options);
  return elementwiseOptimizer(optimizerName(momentumComponent, o), momentumRule(o.learningRate, o.momentum, false));
}
