import * as tf from '@tensorflow/tfjs-core';
import { Rng, defineComponent, type Split, type TaskConfig, type TaskFamily } from '@l2l/core';

export interface ParabolasOptions {
  dims: number;
}

/** What `sample` draws: plain JSON that rebuilds exactly one task. */
interface ParabolasConfig extends TaskConfig {
  a: number[];
  b: number[];
}

/** f(x) = Σ aᵢ (xᵢ − bᵢ)², with a and b drawn per task; the starting point is drawn per run. */
export const parabolasFamily = defineComponent<ParabolasOptions>()({
  kind: 'optimizee',
  type: 'example-parabolas',
  description: 'Random separable parabolas Σ a[i](x[i] − b[i])², a and b drawn per task',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { dims: { type: 'integer', minimum: 1, default: 8, description: 'Number of coordinates of x' } },
  },
  // Sizes for l2l's pre-flight (it refuses a run that would not fit before anything is built): a task holds a and b,
  // and a taped step keeps x − b, its square and the product, dims floats each.
  estimate: ({ dims }) => ({ coordinates: dims, bytes: 2 * 4 * dims, stepBytes: 3 * 4 * dims }),
  create: ({ dims }): TaskFamily => ({
    type: 'example-parabolas',
    sample(seed: number, split: Split): ParabolasConfig {
      // The split is part of the stream, so train and test tasks never coincide.
      const rng = Rng.from(seed, 'example-parabolas', split);
      return { family: 'example-parabolas', split, seed, a: Array.from(rng.uniforms(dims, 0.5, 2)), b: Array.from(rng.normals(dims)) };
    },
    build(config: TaskConfig) {
      const { a, b } = config as ParabolasConfig;
      // Tensors a task holds are freed by its dispose().
      const at = tf.tensor1d(a);
      const bt = tf.tensor1d(b);
      return {
        config,
        initParams: (seed: number) => ({ x: tf.tensor1d(Rng.from(seed, 'example-parabolas-init', config.split, config.seed).normals(dims)) }),
        batch: () => ({}), // no data
        loss: ({ x }) => tf.tidy(() => tf.sum(tf.mul(at, tf.square(tf.sub(x!, bt))))),
        dispose: () => tf.dispose([at, bt]),
      };
    },
  }),
});
