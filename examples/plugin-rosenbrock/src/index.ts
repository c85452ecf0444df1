import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, definePlugin, Rng, type JsonSchema, type Split, type Task, type TaskConfig, type TaskFamily } from '@l2l/core';

/** A value, or a `[low, high]` range a task draws it from uniformly. */
type Range = number | [number, number];

export interface RosenbrockOptions {
  dims: number;
  a: Range;
  b: Range;
  init: 'normal' | 'uniform';
  initMean: number;
  initScale: number;
}

/** What `sample` draws: plain JSON that rebuilds exactly one task. */
interface RosenbrockConfig extends TaskConfig {
  a: number;
  b: number;
}

const range = (description: string, defaultValue: Range): JsonSchema => ({
  description,
  default: defaultValue,
  anyOf: [{ type: 'number' }, { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 }],
});

const draw = (rng: Rng, r: Range) => (typeof r === 'number' ? r : rng.uniform(r[0], r[1]));

/**
 * Rosenbrock functions f(x) = Σᵢ b·(xᵢ₊₁ − xᵢ²)² + (a − xᵢ)², with a and b drawn per task. The starting
 * point is drawn per run (`initParams(seed)`).
 */
export const rosenbrockFamily = defineComponent<RosenbrockOptions>()({
  kind: 'optimizee',
  type: 'rosenbrock',
  description: 'Rosenbrock functions Σ b(x[i+1] − x[i]²)² + (a − x[i])² with a and b drawn per task',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      dims: { type: 'integer', minimum: 2, default: 2, description: 'Number of coordinates of x' },
      a: range('a, or a [low, high] range each task draws it from', [0.5, 1.5]),
      b: range('b, or a [low, high] range each task draws it from', [2, 20]),
      init: { enum: ['normal', 'uniform'], default: 'normal', description: 'Distribution of the starting point' },
      initMean: { type: 'number', default: -1, description: 'Mean of each starting coordinate' },
      initScale: { type: 'number', exclusiveMinimum: 0, default: 0.5, description: 'Standard deviation (normal) or half-width (uniform) of each starting coordinate' },
    },
  },
  // Sizes for l2l's pre-flight: a task holds no tensors; a taped step keeps about nine vectors of dims floats
  // (the two slices, their squares, differences and products).
  estimate: ({ dims }) => ({ coordinates: dims, bytes: 0, stepBytes: 9 * 4 * dims }),
  create: (o): TaskFamily => ({
    type: 'rosenbrock',
    sample(seed: number, split: Split): RosenbrockConfig {
      // The split is part of the stream, so train and test tasks never coincide.
      const rng = Rng.from(seed, 'rosenbrock', split);
      return { family: 'rosenbrock', split, seed, a: draw(rng, o.a), b: draw(rng, o.b) };
    },
    build(config: TaskConfig): Task {
      const { a, b } = config as RosenbrockConfig;
      return {
        config,
        initParams(seed: number) {
          const rng = Rng.from(seed, 'rosenbrock-init', config.split, config.seed);
          const x = o.init === 'normal'
            ? rng.normals(o.dims, o.initMean, o.initScale)
            : rng.uniforms(o.dims, o.initMean - o.initScale, o.initMean + o.initScale);
          return { x: tf.tensor1d(x) };
        },
        batch: () => ({}), // no data
        loss: ({ x }) =>
          tf.tidy(() => {
            const head = tf.slice(x!, 0, o.dims - 1);
            const tail = tf.slice(x!, 1, o.dims - 1);
            return tf.sum(tf.add(tf.mul(b, tf.square(tf.sub(tail, tf.square(head)))), tf.square(tf.sub(a, head))));
          }),
        dispose: () => {}, // holds no tensors
      };
    },
  }),
});

export default definePlugin({
  name: 'l2l-plugin-rosenbrock',
  description: 'Rosenbrock functions as optimizees',
  components: [rosenbrockFamily],
});
