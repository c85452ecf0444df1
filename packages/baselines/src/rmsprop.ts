import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type Optimizer } from '@l2l/core';
import { elementwiseOptimizer, epsilonSchema, learningRateSchema, optimizerName, rateSchema, resolveOptions, type ParamSlots } from './common';

export interface RmspropOptions {
  learningRate: number;
  decay: number;
  momentum: number;
  epsilon: number;
  centered: boolean;
}

/** RMSProp as a functional optimizer, with `tf.train.rmsprop`'s update (see `rmspropOptimizer`). */
export const rmspropComponent = defineComponent<RmspropOptions>()({
  kind: 'optimizer',
  type: 'rmsprop',
  description: 'RMSProp: s ← ρs + (1−ρ)g², θ ← θ − lr·g/√(s + ε), optionally with momentum and centering (as tf.train.rmsprop)',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      learningRate: learningRateSchema(0.001),
      decay: rateSchema(0.9, 'Decay rate ρ of the running mean of squared gradients'),
      momentum: rateSchema(0, 'Momentum coefficient applied to the scaled step (0: none)'),
      epsilon: epsilonSchema('Added to the mean square under the square root (tfjs default: its backend epsilon, 1e-7)'),
      centered: {
        type: 'boolean',
        default: false,
        description: 'Divide by an estimate of the gradient variance (mean square minus squared mean gradient) instead of the mean square',
      },
    },
  },
  create: (options) => rmspropOptimizer(options),
});

/**
 * RMSProp, as `tf.train.rmsprop(lr, decay, momentum, epsilon, centered)`:
 * s ← ρs + (1−ρ)g²; centered: ḡ ← ρḡ + (1−ρ)g and d = s − ḡ² + ε, else d = s + ε;
 * a ← μa + lr·g/√d; θ ← θ − a. Slots (all from zero): `ms` always, `mom` only when momentum > 0 (with μ = 0,
 * a = lr·g/√d exactly), `mg` only when centered.
 *
 * One deliberate difference: for centered RMSProp tfjs 4.22 computes √(s − (ḡ² + ε)), subtracting ε; this
 * follows TensorFlow and Keras (√(s − ḡ² + ε)), which cannot take the square root of a negative number.
 * Defaults: `learningRate` 0.001 (Keras's; tfjs has none), `decay` 0.9, `momentum` 0, `epsilon` 1e-7, `centered` false.
 */
export function rmspropOptimizer(options: Partial<RmspropOptions> = {}): Optimizer {
  const o = resolveOptions(rmspropComponent, options);
  return elementwiseOptimizer<ParamSlots>(optimizerName(rmspropComponent, o), {
    init: (param) => {
      const slots: ParamSlots = { ms: tf.zerosLike(param) };
      if (o.momentum > 0) slots.mom = tf.zerosLike(param);
      if (o.centered) slots.mg = tf.zerosLike(param);
      return slots;
    },
    apply: (param, grad, slots, _t, lrScale) => {
      const next: ParamSlots = {};
      const ms = (next.ms = tf.add(tf.mul(slots.ms!, o.decay), tf.mul(tf.square(grad), 1 - o.decay)));
      let denominator: tf.Tensor;
      if (o.centered) {
        const mg = (next.mg = tf.add(tf.mul(slots.mg!, o.decay), tf.mul(grad, 1 - o.decay)));
        denominator = tf.add(tf.sub(ms, tf.square(mg)), o.epsilon);
      } else {
        denominator = tf.add(ms, o.epsilon);
      }
      let step = tf.div(tf.mul(grad, o.learningRate * lrScale), tf.sqrt(denominator));
      if (o.momentum > 0) step = next.mom = tf.add(tf.mul(slots.mom!, o.momentum), step);
      return { param: tf.sub(param, step), slots: next };
    },
  });
}
