import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type NamedTensors, type Optimizer } from '@l2l/core';

export interface SignSgdOptions {
  learningRate: number;
}

/**
 * Sign SGD: θ ← θ − lr·sign(g). A functional optimizer: `update` returns a new state and never changes or
 * disposes its inputs; the caller frees the old state.
 */
export const signSgd = defineComponent<SignSgdOptions>()({
  kind: 'optimizer',
  type: 'example-sign-sgd',
  description: 'Sign SGD: θ ← θ − lr·sign(g)',
  schema: {
    type: 'object',
    additionalProperties: false,
    // `learningRate` is the option `l2l eval` tunes by grid.
    properties: { learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Step size' } },
  },
  create: ({ learningRate }): Optimizer => ({
    name: `example-sign-sgd(lr=${learningRate})`,
    init: (params) => ({ params, slots: null, step: 0 }),
    // ctx.learningRateScale: a schedule's factor when this optimizer is training.outerOptimizer.
    update: (state, grads, ctx) => ({
      params: tf.tidy(() => {
        const out: NamedTensors = {};
        const lr = learningRate * (ctx.learningRateScale ?? 1);
        for (const [name, p] of Object.entries(state.params)) out[name] = tf.sub(p, tf.mul(tf.sign(grads[name]!), lr));
        return out;
      }),
      slots: null,
      step: state.step + 1,
    }),
  }),
});
