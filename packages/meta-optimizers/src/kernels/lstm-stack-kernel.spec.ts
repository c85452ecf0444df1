import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend, type NamedTensors, type Task } from '@l2l/core';
import { checkFusedKernel } from '@l2l/core/testing';
import { LstmMetaOptimizer } from '../lstm';
import { RnnpropMetaOptimizer } from '../rnnprop';

/**
 * A least-squares task over parameters split into tensors of awkward sizes: f(θ) = mean((A·θ − y)²) on a
 * minibatch of rows drawn per step, θ the concatenation of the tensors. `n` coordinates in total.
 */
export function leastSquaresTask(n: number, seed: number): Task {
  const rng = Rng.from(seed, 'least-squares');
  const rows = 16;
  const A = tf.keep(tf.tensor2d(rng.normals(rows * 4 * n, 0, 1 / Math.sqrt(n)), [rows * 4, n]));
  const y = tf.keep(tf.tensor2d(rng.normals(rows * 4, 0, 1), [rows * 4, 1]));
  const split = [Math.ceil(n / 3), n - Math.ceil(n / 3)];
  return {
    config: { family: 'least-squares', split: 'train', seed },
    initParams(s: number): NamedTensors {
      const r = Rng.from(s, 'init');
      return { a: tf.tensor1d(r.normals(split[0]!, 0, 1)), b: tf.tensor2d(r.normals(split[1]!, 0, 1), [split[1]!, 1]) };
    },
    batch(step: number, s: number) {
      const r = Rng.from(s, 'batch', step);
      const idx = Array.from({ length: rows }, () => r.int(rows * 4));
      return { rows: tf.tensor1d(idx, 'int32') };
    },
    loss(params: NamedTensors, batch) {
      return tf.tidy(() => {
        const theta = tf.concat([tf.reshape(params.a!, [-1, 1]), params.b!], 0);
        const r = tf.sub(tf.matMul(tf.gather(A, batch.rows!), theta), tf.gather(y, batch.rows!));
        return tf.mean(tf.square(r)) as tf.Scalar;
      });
    },
    dispose() {
      tf.dispose([A, y]);
    },
  };
}

describe('lstm-stack kernel vs the tfjs path', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  test('lstm, 13 coordinates, unroll 3', () => {
    const meta = new LstmMetaOptimizer({}, 3);
    const task = leastSquaresTask(13, 1);
    try {
      const r = checkFusedKernel(meta, task, { length: 3, unrolls: 2 });
      console.log(r);
    } finally {
      task.dispose();
      meta.dispose();
    }
  });
  test('rnnprop, 13 coordinates, unroll 3', () => {
    const meta = new RnnpropMetaOptimizer({}, 3);
    const task = leastSquaresTask(13, 1);
    try {
      const r = checkFusedKernel(meta, task, { length: 3, unrolls: 2 });
      console.log(r);
    } finally {
      task.dispose();
      meta.dispose();
    }
  });
});
