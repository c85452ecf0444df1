import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@l2l/core';
import { checkFusedKernel } from '@l2l/core/testing';
import { leastSquaresTask } from '../common/spec-helpers';
import { MultiscaleAdamMetaOptimizer } from './multiscale-adam';

describe.each(['wasm', 'cpu'] as const)('multiscale-adam\'s linear-combiner kernel against the tfjs path on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    // (At the first step every Adam direction is sign(g), so the logits' meta-gradient is exactly 0 there: an
    // unroll of 1 would compare rounding noise.)
    [{}, 13, 2, 'uniform'],
    [{}, 37, 20, 'uniform'],
    [{ learnLearningRate: false, learningRate: 0.05 }, 21, 3, 'last'],
    [{ betas: [[0.9, 0.999], [0.5, 0.6]] }, 9, 5, 'uniform'],
  ] as const)('%j, %d coordinates, unroll %d, losses %s: same meta-gradients and losses', (options, n, length, lossWeights) => {
    const before = tf.memory().numTensors;
    const meta = new MultiscaleAdamMetaOptimizer(options as object, 4);
    try {
      // Move the logits off their near-uniform start, so the softmax Jacobian is exercised.
      const logits = meta.variables['combiner/logits']!;
      tf.tidy(() => logits.assign(tf.tensor2d([Array.from({ length: logits.size }, (_, j) => 0.3 * j - 0.5)])));
      const task = leastSquaresTask(n, 7);
      try {
        // 5e-5, not 1e-5: the logits' meta-gradient is w ⊙ (∂L/∂w − ⟨w, ∂L/∂w⟩), a difference of nearly equal sums
        // over every coordinate and step, which the tfjs path accumulates in float32 and the kernel in float64.
        const r = checkFusedKernel(meta, task, { length, unrolls: 2, lossWeights, tolerance: 5e-5 });
        expect(r.gradientNorm).toBeGreaterThan(1e-4);
      } finally {
        task.dispose();
      }
    } finally {
      meta.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });


});
