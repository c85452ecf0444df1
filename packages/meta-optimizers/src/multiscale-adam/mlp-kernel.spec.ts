import * as tf from '@tensorflow/tfjs-core';
import { runOptimizer, Rng, useBackend } from '@l2l/core';
import { kernelMemoryBytes } from '../kernels/kernel-threads';
import { checkFusedKernel } from '@l2l/core/testing';
import { leastSquaresTask } from '../common/spec-helpers';
import { MultiscaleAdamMlpKernel } from './mlp-kernel';
import { MultiscaleAdamMetaOptimizer } from './multiscale-adam';
import type { MultiscaleAdamOptions } from './options';

const withMeta = <T>(options: Partial<MultiscaleAdamOptions>, seed: number, fn: (m: MultiscaleAdamMetaOptimizer) => T): T => {
  const meta = new MultiscaleAdamMetaOptimizer({ combiner: 'mlp', ...options }, seed);
  try {
    return fn(meta);
  } finally {
    meta.dispose();
  }
};

describe.each(['wasm', 'cpu'] as const)('multiscale-adam\'s mlp-combiner kernel against the tfjs path on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    // (At the first step every Adam direction is sign(g): an unroll of 1 alone would give the softmax little to do.)
    [{}, 13, 2, 'uniform'],
    [{}, 37, 20, 'uniform'],
    [{ learnLearningRate: false, learningRate: 0.05, hidden: 7 }, 21, 3, 'last'],
    [{ betas: [[0.9, 0.999], [0.5, 0.6]], hidden: 4 }, 9, 5, 'uniform'],
  ] as const)('%j, %d coordinates, unroll %d, losses %s: same meta-gradients and losses', (options, n, length, lossWeights) => {
    const before = tf.memory().numTensors;
    withMeta(options as Partial<MultiscaleAdamOptions>, 3, (meta) => {
      expect(meta.optimizer().fused?.description).toMatch(/^wasm multiscale-adam mlp combiner \(SIMD/);
      const task = leastSquaresTask(n, 5);
      try {
        // 5e-5 as for the linear combiner: the softmax's meta-gradient is a difference of nearly equal sums, which
        // the tfjs path accumulates in float32 and the kernel in float64.
        const r = checkFusedKernel(meta, task, { length, unrolls: 2, lossWeights, tolerance: 5e-5 });
        expect(r.gradientNorm).toBeGreaterThan(1e-4);
      } finally {
        task.dispose();
      }
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('evaluation (runOptimizer) gives the same losses on the kernel and on tfjs, NaN gradients included', () => {
    withMeta({}, 1, (meta) => {
      const task = leastSquaresTask(29, 6);
      try {
        const opt = meta.optimizer();
        const a = runOptimizer(task, opt, { steps: 30, initSeed: 1, batchSeed: 2 });
        const b = runOptimizer(task, opt, { steps: 30, initSeed: 1, batchSeed: 2, kernel: 'tfjs' });
        for (let i = 0; i < b.losses.length; i++) expect(Math.abs(a.losses[i]! - b.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(b.losses[i]!) + 1e-7);
        expect(a.losses[30]!).not.toBe(a.losses[0]!);
      } finally {
        task.dispose();
      }
      // A NaN gradient gives a NaN update on that coordinate only, as on the tfjs path.
      const run = meta.optimizer().fused!.open(3);
      try {
        const theta = new Float32Array([1, 2, 3]);
        run.step(Float32Array.of(0.5, NaN, -1), theta);
        expect(Number.isNaN(theta[1]!)).toBe(true);
        expect(Number.isFinite(theta[0]!) && Number.isFinite(theta[2]!)).toBe(true);
      } finally {
        run.dispose();
      }
    });
  });

  it('refuses weights of the wrong size in one line', () => {
    withMeta({ hidden: 5 }, 0, (meta) => {
      // A kernel built for 6 hidden units, reading the weights of a 5-unit MLP (2 timescales: [6, 3] expected).
      const kernel = new MultiscaleAdamMlpKernel([[0.9, 0.999], [0.5, 0.6]], 1e-8, 6, () => meta.variables, null);
      expect(() => kernel.open(4)).toThrow(/^fused kernel: weight "mlp\/hidden\/kernel" has \d+ entries, the kernel expects 18$/);
    });
  });

  it('leaks no kernel memory over 100 unrolls, and more timescales than the kernel holds run on the tape', () => {
    withMeta({}, 2, (meta) => {
      const kernel = meta.optimizer().fused!;
      const rng = Rng.from(1, 'leak');
      const g = Float32Array.from(rng.normals(50, 0, 1));
      const once = () => {
        const run = kernel.open(50);
        try {
          run.beginUnroll(3);
          const theta = new Float32Array(50);
          for (let t = 0; t < 3; t++) run.step(g, theta);
          run.backward([g, g, g]);
        } finally {
          run.dispose();
        }
      };
      once();
      const bytes = kernelMemoryBytes();
      for (let i = 0; i < 100; i++) once();
      expect(kernelMemoryBytes()).toBe(bytes);
    });
    const betas = Array.from({ length: 17 }, (_, j) => [0.5 + j / 40, 0.9] as [number, number]);
    withMeta({ betas }, 0, (meta) => expect(meta.optimizer().fused).toBeUndefined());
  });
});
