import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type Optimizer } from '@l2l/core';
import { elementwiseOptimizer, epsilonSchema, learningRateSchema, optimizerName, rateSchema, resolveOptions } from './common';

export interface AdamOptions {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Adam as a functional optimizer, with `tf.train.adam`'s update (see `adamOptimizer`). */
export const adamComponent = defineComponent<AdamOptions>()({
  kind: 'optimizer',
  type: 'adam',
  description: 'Adam: bias-corrected moment estimates, θ ← θ − lr·m̂/(√v̂ + ε) (as tf.train.adam)',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      learningRate: learningRateSchema(0.001),
      beta1: rateSchema(0.9, 'Decay rate of the first-moment (mean) estimate'),
      beta2: rateSchema(0.999, 'Decay rate of the second-moment (uncentered variance) estimate'),
      epsilon: epsilonSchema('Added to √v̂ in the denominator (tfjs default: its backend epsilon, 1e-7)'),
    },
  },
  create: (options) => adamOptimizer(options),
});

/**
 * Adam, as `tf.train.adam`: m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)
 * with t the 1-based update count (`state.step + 1`). Slots `m` and `v` start at zero. Defaults are tfjs's:
 * `learningRate` 0.001, `beta1` 0.9, `beta2` 0.999, `epsilon` 1e-7. The bias corrections 1 − βᵗ are rounded
 * as tfjs rounds them (see `biasCorrection`), so trajectories match tf.train.adam's to float32 precision.
 */
export function adamOptimizer(options: Partial<AdamOptions> = {}): Optimizer {
  const o = resolveOptions(adamComponent, options);
  return elementwiseOptimizer(optimizerName(adamComponent, o), {
    init: (param) => ({ m: tf.zerosLike(param), v: tf.zerosLike(param) }),
    apply: (param, grad, { m, v }, t, lrScale) => {
      const m1 = tf.add(tf.mul(m, o.beta1), tf.mul(grad, 1 - o.beta1));
      const v1 = tf.add(tf.mul(v, o.beta2), tf.mul(tf.square(grad), 1 - o.beta2));
      const mHat = tf.div(m1, biasCorrection(o.beta1, t));
      const vHat = tf.div(v1, biasCorrection(o.beta2, t));
      const step = tf.div(mHat, tf.add(tf.sqrt(vHat), o.epsilon));
      return { param: tf.sub(param, tf.mul(step, o.learningRate * lrScale)), slots: { m: m1, v: v1 } };
    },
  });
}

/**
 * 1 − βᵗ computed as tf.train.adam computes it: βᵗ as a float32 running product (β rounded to float32, one
 * float32 multiply per step), then 1 − βᵗ in float32. For β = 0.999 this differs from the exact value by
 * ~1e-5 relative (float32 cancellation); doing the same keeps our steps identical to tfjs's.
 */
export function biasCorrection(beta: number, t: number): number {
  const b = Math.fround(beta);
  let acc = b;
  for (let i = 1; i < t; i++) acc = Math.fround(acc * b);
  return Math.fround(1 - acc);
}
