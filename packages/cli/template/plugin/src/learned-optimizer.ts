import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, type MetaOptimizer, type NamedTensors, type Optimizer } from '@l2l/core';

export interface ScaledMomentumOptions {
  /** Initial step size, exp(φ.logLr). */
  learningRate: number;
  /** Initial momentum decay, sigmoid(φ.logitBeta). */
  beta: number;
}

/**
 * A learned optimizer small enough to read: momentum m ← β·m + (1 − β)·g, θ ← θ − lr·m, whose lr and β are
 * its weights φ (as log lr and logit β), meta-trained by l2l. Rules every learned optimizer follows:
 * - φ are `tf.Variable`s, and `optimizer()` uses them (not copies), so meta-gradients reach them;
 * - `optimizer(weights)` reads the weights given instead (ES and PES evaluate perturbed φ this way), never
 *   touching the variables;
 * - tfjs variable names are global: let tfjs name them (no `name` argument) and keep stable names as keys;
 * - tensors made only to initialise a variable are disposed; `dispose()` frees the variables;
 * - `update` frees its intermediates (tf.tidy), and never disposes or changes its inputs.
 */
export const scaledMomentum = defineComponent<ScaledMomentumOptions>()({
  kind: 'meta-optimizer',
  type: 'example-scaled-momentum',
  description: 'Momentum whose step size and decay are learned',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.05, description: 'Initial step size' },
      beta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.5, description: 'Initial momentum decay' },
    },
  },
  // Sizes for l2l's pre-flight: two weights; per coordinate one float of momentum, and about five taped per step.
  estimate: () => ({ weights: 2, stateBytes: 4, stepBytes: 5 * 4 }),
  create: (options): MetaOptimizer => {
    const initial = { logLr: tf.scalar(Math.log(options.learningRate)), logitBeta: tf.scalar(Math.log(options.beta / (1 - options.beta))) };
    const variables: Record<string, tf.Variable> = {};
    for (const [name, t] of Object.entries(initial)) {
      variables[name] = tf.variable(t, true);
      t.dispose();
    }
    const optimizer = (given?: Readonly<Record<string, tf.Tensor>>): Optimizer => {
      for (const [name, v] of Object.entries(given ? variables : {})) {
        if (!given![name] || !tf.util.arraysEqual(given![name]!.shape, v.shape)) throw new Error(`example-scaled-momentum: weight "${name}" missing or of the wrong shape`);
      }
      const phi = given ?? variables;
      return {
      name: 'example-scaled-momentum',
      init: (params) => ({ params, slots: Object.fromEntries(Object.entries(params).map(([k, p]) => [k, tf.zerosLike(p)])), step: 0 }),
      // tf.tidy frees the intermediates; the engine's gradient tape keeps what the meta-gradient needs.
      update: (state, grads) => {
        const { params, slots } = tf.tidy(() => {
          const lr = tf.exp(phi.logLr!);
          const beta = tf.sigmoid(phi.logitBeta!);
          const m = state.slots as NamedTensors;
          const slots: NamedTensors = {};
          const params: NamedTensors = {};
          for (const [name, p] of Object.entries(state.params)) {
            slots[name] = tf.add(tf.mul(beta, m[name]!), tf.mul(tf.sub(1, beta), grads[name]!));
            params[name] = tf.sub(p, tf.mul(lr, slots[name]!));
          }
          return { params, slots };
        });
        return { params, slots, step: state.step + 1 };
      },
      };
    };
    return {
      type: 'example-scaled-momentum',
      coordinatewise: true, // each coordinate's update uses only its own gradient and momentum
      config: () => ({ type: 'example-scaled-momentum', options: { ...options } }),
      variables,
      getWeights: () => Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, tf.clone(v)])),
      setWeights: (weights) => {
        for (const [name, v] of Object.entries(variables)) {
          const w = weights[name];
          if (!w || !tf.util.arraysEqual(w.shape, v.shape)) throw new Error(`example-scaled-momentum: weight "${name}" missing or of shape [${w?.shape}], expected [${v.shape}]`);
        }
        const extra = Object.keys(weights).filter((k) => !(k in variables));
        if (extra.length > 0) throw new Error(`example-scaled-momentum: unknown weights ${extra.join(', ')}`);
        for (const [name, v] of Object.entries(variables)) v.assign(weights[name]!);
      },
      optimizer,
      dispose: () => tf.dispose(Object.values(variables)),
    };
  },
});
