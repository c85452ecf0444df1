import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@l2l/core';
import { checkForwardPaths, checkFusedKernel } from '@l2l/core/testing';
import { leastSquaresTask } from '../common/spec-helpers';
import { MultiscaleAdamMetaOptimizer } from './multiscale-adam';
import type { MultiscaleAdamOptions } from './options';

// The RNN combiner runs on the LSTM stack's kernel with multiscale features and a softmax head.
const withMeta = <T>(options: Partial<MultiscaleAdamOptions>, seed: number, fn: (m: MultiscaleAdamMetaOptimizer) => T): T => {
  const meta = new MultiscaleAdamMetaOptimizer({ combiner: 'rnn', ...options }, seed);
  try {
    return fn(meta);
  } finally {
    meta.dispose();
  }
};

describe.each(['wasm', 'cpu'] as const)('multiscale-adam\'s rnn-combiner kernel against the tfjs path on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    [{}, 13, 2, 'uniform', 1],
    [{}, 37, 20, 'uniform', 1],
    [{ learnLearningRate: false, learningRate: 0.05, hidden: 7 }, 21, 3, 'last', 1],
    [{ betas: [[0.9, 0.999], [0.5, 0.6]], hidden: 4 }, 9, 5, 'uniform', 1],
    [{ hidden: 6 }, 203, 5, 'uniform', 2],
  ] as const)('%j, %d coordinates, unroll %d, losses %s, %d thread(s): same meta-gradients and losses', (options, n, length, lossWeights, threads) => {
    const before = tf.memory().numTensors;
    withMeta(options as Partial<MultiscaleAdamOptions>, 3, (meta) => {
      expect(meta.optimizer().fused?.description).toMatch(/^wasm lstm-stack/);
      const task = leastSquaresTask(n, 5);
      try {
        // 5e-5 as for the other combiners: the softmax's meta-gradient is a difference of nearly equal sums.
        const r = checkFusedKernel(meta, task, { length, unrolls: 2, lossWeights, tolerance: 5e-5, threads });
        expect(r.gradientNorm).toBeGreaterThan(1e-4);
      } finally {
        task.dispose();
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe.each(['wasm', 'cpu'] as const)('multiscale-adam\'s combiners\' kernels in ES/PES forward passes on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  // The moments of every timescale are the state a snapshot carries (and the LSTM's h and c for the rnn combiner).
  it.each(['rnn', 'mlp', 'linear'] as const)('the %s combiner gives the tfjs path\'s objectives', (combiner) => {
    const before = tf.memory().numTensors;
    withMeta({ combiner }, 3, (meta) => {
      const task = leastSquaresTask(21, 5);
      try {
        expect(checkForwardPaths(meta, task, { length: 4, truncations: 3 }).value).toBeLessThanOrEqual(1e-5);
      } finally {
        task.dispose();
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
