import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  applyTrainingTricks,
  ComponentRegistry,
  createContainer,
  disposeTree,
  MetaTrainer,
  resolveTrainingOptions,
  Rng,
  runOptimizer,
  useBackend,
  VariableOptimizer,
  type NamedTensors,
  type OptimizerState,
  type Task,
} from '@l2l/core';
import { checkForwardPaths, checkFusedKernel } from '@l2l/core/testing';
import { expectSameTraining, familyOf, leastSquaresTask, trainShort } from '../common/spec-helpers';
import { kernelMemoryBytes } from '../kernels/kernel-threads';
import { metaOptimizersModule } from '../meta-optimizers-module';
import { NormalizedHistoryKernel } from './kernel';
import { NormalizedHistoryMetaOptimizer } from './normalized-history';
import type { NormalizedHistoryOptions } from './options';

const withMeta = <T>(options: Partial<NormalizedHistoryOptions>, seed: number, fn: (m: NormalizedHistoryMetaOptimizer) => T): T => {
  const meta = new NormalizedHistoryMetaOptimizer(options, seed);
  try {
    return fn(meta);
  } finally {
    meta.dispose();
  }
};

const withTask = <T>(task: Task, fn: (t: Task) => T): T => {
  try {
    return fn(task);
  } finally {
    task.dispose();
  }
};

/** The kernel's run over `gs` (one gradient per step) from θ₀: every θ_{t+1}, and the backward pass's result for `ds` if given. */
function kernelRun(kernel: NormalizedHistoryKernel, theta0: Float32Array, gs: Float32Array[], ds?: Float32Array[], threads = 1) {
  const run = kernel.open(theta0.length, { threads });
  try {
    const theta = Float32Array.from(theta0);
    if (ds) run.beginUnroll(gs.length);
    const thetas = gs.map((g) => {
      run.step(g, theta);
      return Float32Array.from(theta);
    });
    return { thetas, grads: ds ? run.backward(ds) : undefined };
  } finally {
    run.dispose();
  }
}

describe.each(['wasm', 'cpu'] as const)('the normalized-history kernel against the tfjs path on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  // Coordinate counts that are not multiples of the tile (8); unrolls of 1, 3 and 20, shorter and longer than the
  // window; both loss weightings; both parameter inputs. Two consecutive unrolls each: the second starts from
  // windows the first filled.
  it.each([
    // (With the default minStep of 1e-4 the first steps are tiny, and so are their meta-gradients: larger ones here.)
    [{ historySize: 5, hidden: 6, minStep: 0.1 }, 13, 1, 'uniform'],
    [{ minStep: 0.01 }, 37, 3, 'uniform'],
    [{}, 37, 20, 'last'],
    [{ historySize: 6, hidden: 7, paramInput: 'infNorm', magnitudes: [0, 0.5, 1], minStep: 0.05 }, 21, 3, 'last'],
    [{ historySize: 5, hidden: 4, initScale: 3, minStep: 0.3 }, 9, 20, 'uniform'],
    [{ historySize: 7, hidden: 9, paramInput: 'infNorm', initScale: 2 }, 30, 20, 'uniform'],
  ] as const)('%j, %d coordinates, unroll %d, losses %s: same meta-gradients and losses', (options, n, length, lossWeights) => {
    const before = tf.memory().numTensors;
    withMeta(options as Partial<NormalizedHistoryOptions>, 5, (meta) => {
      expect(meta.optimizer().fused?.description).toMatch(/^wasm normalized-history \(SIMD/);
      const r = withTask(leastSquaresTask(n, 3), (task) => checkFusedKernel(meta, task, { length, unrolls: 2, lossWeights, tolerance: 1e-5 }));
      expect(r.gradientNorm).toBeGreaterThan(1e-3);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  // The windows are the state a snapshot carries; the first truncation starts at the run's first step.
  it.each([
    [{ historySize: 5, hidden: 6, minStep: 0.1 }, 13, 'uniform', 1],
    [{ historySize: 6, hidden: 7, paramInput: 'infNorm', magnitudes: [0, 0.5, 1], minStep: 0.05 }, 21, 'last', 2],
  ] as const)('%j, %d coordinates, losses %s, %d thread(s): ES/PES forward passes give the tfjs path\'s objectives', (options, n, lossWeights, threads) => {
    const before = tf.memory().numTensors;
    withMeta(options as Partial<NormalizedHistoryOptions>, 5, (meta) => {
      const r = withTask(leastSquaresTask(n, 3), (task) => checkForwardPaths(meta, task, { length: 4, truncations: 3, lossWeights, threads }));
      expect(r.value).toBeLessThanOrEqual(1e-5);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with the training tricks (random scaling, convex combination) gives the same meta-gradients', () => {
    withMeta({ historySize: 6, hidden: 8 }, 2, (meta) => {
      const task = applyTrainingTricks(leastSquaresTask(19, 4), { randomScale: 2, convexCombination: true }, 11);
      const r = withTask(task, (t) => checkFusedKernel(meta, t, { length: 5, unrolls: 2, tolerance: 1e-5 }));
      expect(r.gradientNorm).toBeGreaterThan(1e-3);
    });
  });

  it('evaluation (runOptimizer) gives the same losses on the kernel and on tfjs', () => {
    withMeta({}, 1, (meta) =>
      withTask(leastSquaresTask(29, 6), (task) => {
        const opt = meta.optimizer();
        const a = runOptimizer(task, opt, { steps: 40, initSeed: 1, batchSeed: 2 });
        const b = runOptimizer(task, opt, { steps: 40, initSeed: 1, batchSeed: 2, kernel: 'tfjs' });
        for (let i = 0; i < b.losses.length; i++) expect(Math.abs(a.losses[i]! - b.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(b.losses[i]!) + 1e-7);
        // The run moved: the comparison is not of constant curves.
        expect(Math.abs(a.losses[40]! - a.losses[0]!)).toBeGreaterThan(1e-3 * a.losses[0]!);
      }),
    );
  });

  it('VariableOptimizer updates variables through the kernel as through tfjs, inside a caller\'s tidy, leaking nothing', () => {
    withMeta({ historySize: 5, hidden: 8, minStep: 0.01 }, 1, (meta) => {
      const before = tf.memory().numTensors;
      const train = (kernel: 'auto' | 'tfjs') => {
        const w = tf.tidy(() => tf.variable(tf.tensor2d([[0.5, -1.5, 2], [1, 0.25, -0.75]])));
        const b = tf.tidy(() => tf.variable(tf.tensor1d([0.1, -0.2])));
        const x = tf.tensor2d([[1, 2], [0.5, -1], [2, 0.3]]);
        const opt = new VariableOptimizer(meta.optimizer(), { w, b }, { kernel });
        const losses: number[] = [];
        for (let i = 0; i < 25; i++) {
          losses.push(tf.tidy(() => opt.minimize(() => tf.sum(tf.square(tf.add(tf.matMul(x, w), tf.reshape(b, [2, 1]).sum()))) as tf.Scalar)));
        }
        const out = { path: opt.path, losses, w: Array.from(w.dataSync()) };
        opt.dispose();
        tf.dispose([w, b, x]);
        return out;
      };
      const fused = train('auto');
      const tape = train('tfjs');
      expect(fused.path).toMatch(/^fused kernel, wasm normalized-history/);
      expect(tape.path).toBe('tfjs');
      for (let i = 0; i < tape.w.length; i++) expect(Math.abs(fused.w[i]! - tape.w[i]!)).toBeLessThan(1e-5);
      for (let i = 0; i < tape.losses.length; i++) expect(Math.abs(fused.losses[i]! - tape.losses[i]!)).toBeLessThanOrEqual(1e-5 * tape.losses[i]! + 1e-6);
      expect(fused.losses[24]!).not.toBe(fused.losses[0]!);
      expect(tf.memory().numTensors).toBe(before);
    });
  });

  it('per-group with normalized-history in each group runs on the groups\' kernels, with the tape\'s meta-gradients', () => {
    const reg = createContainer(metaOptimizersModule).get(ComponentRegistry);
    const group = (hidden: number) => ({ type: 'normalized-history', options: { historySize: 5, hidden, minStep: 0.05 } });
    const meta = reg.create('meta-optimizer', { type: 'per-group', options: { groups: { conv: group(6), fc: group(4) } } }, { seed: 2, baseDir: '.' });
    const task = { ...leastSquaresTask(29, 3), parameterGroups: () => ({ a: 'conv', b: 'fc' }) };
    try {
      expect(meta.optimizer().fused?.description).toMatch(/^per group \(conv, fc\): wasm normalized-history/);
      const r = checkFusedKernel(meta, task, { length: 4, unrolls: 2, tolerance: 1e-5 });
      expect(r.gradientNorm).toBeGreaterThan(1e-3);
    } finally {
      task.dispose();
      meta.dispose();
    }
  });

  // A non-finite input makes the coordinate's update NaN from then on, as on the cpu backend's tfjs path. The
  // wasm backend's ReLU (XNNPACK's, an integer max on the float's bits) maps a NaN whose sign bit is set to 0; the
  // NaN that Ĝ = G·(1/‖G‖∞) gives for an infinite gradient (∞·0) is such a NaN there, so tfjs-wasm makes that step
  // from the biases alone. The kernel does not copy this: on wasm, those coordinates are NaN in the kernel only.
  it('NaN and ±Inf gradients and parameters give the updates the tfjs path gives, step after step', () => {
    withMeta({ historySize: 5, hidden: 6 }, 3, (meta) => {
      const opt = meta.optimizer();
      const theta0 = Float32Array.from([0.5, -1, 2, 0, 1e-3, NaN, 3, -2, 1, 0.25, Infinity, 4]);
      const n = theta0.length;
      const rng = Rng.from(4, 'nan');
      const gs = Array.from({ length: 7 }, () => Float32Array.from(rng.normals(n, 0, 1)));
      // NaN, ±Inf, a huge and a zero gradient, at different steps, in the window and after they have left it.
      gs[0]![1] = NaN;
      gs[2]![2] = Infinity;
      gs[2]![3] = -Infinity;
      gs[1]![4] = 1e30;
      gs[3]![6] = 0;
      gs[0]![7] = 0;
      gs[1]![7] = 0;
      let state: OptimizerState = opt.init({ p: tf.tensor1d(theta0) });
      const expected: Float32Array[] = [];
      for (const [t, g] of gs.entries()) {
        const grads: NamedTensors = { p: tf.tensor1d(g) };
        const next = opt.update(state, grads, { step: t, training: true });
        expected.push(next.params.p!.dataSync() as Float32Array);
        disposeTree([state, grads]);
        state = next;
      }
      disposeTree(state);
      const { thetas } = kernelRun(opt.fused as NormalizedHistoryKernel, theta0, gs);
      thetas.forEach((theta, t) => {
        for (let i = 0; i < n; i++) {
          const e = expected[t]![i]!;
          if (Number.isNaN(e)) expect([t, i, theta[i]]).toEqual([t, i, NaN]);
          else if (backend === 'wasm' && Number.isNaN(theta[i]!)) expect(t >= 2 && (i === 2 || i === 3) ? 'the ±Inf gradients' : { t, i }).toBe('the ±Inf gradients');
          else expect(Math.abs(theta[i]! - e) <= 1e-5 * Math.abs(e) + 1e-6 ? 'ok' : { t, i, kernel: theta[i], tfjs: e }).toBe('ok');
        }
      });
      const nans = thetas[6]!.map((v) => (Number.isNaN(v) ? 1 : 0));
      // The coordinates with a NaN or infinite input, and only those, end NaN (the others stay finite).
      expect(Array.from(nans)).toEqual([0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0]);
    });
  });
});

describe('the normalized-history kernel', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it.each(['range', 'infNorm'] as const)('paramInput %s: the backward pass matches central finite differences of the forward pass', (paramInput) => {
    const n = 11;
    const U = 9; // longer than the window: parameters enter and leave it inside the unroll
    const rng = Rng.from(7, 'fd');
    const theta0 = Float32Array.from(rng.normals(n, 0, 1));
    const gs = Array.from({ length: U }, () => Float32Array.from(rng.normals(n, 0, 1)));
    const ds = Array.from({ length: U }, () => Float32Array.from(rng.normals(n, 0, 1)));
    withMeta({ historySize: 5, hidden: 6, minStep: 0.1, paramInput, initScale: 2 }, 3, (meta) => {
      const kernel = meta.optimizer().fused as NormalizedHistoryKernel;
      // L(φ) = Σ_t ⟨D_t, θ_{t+1}⟩ with the gradient inputs fixed, by the forward pass alone, in float64 sums.
      const objective = () => kernelRun(kernel, theta0, gs).thetas.reduce((s, th, t) => s + th.reduce((a, v, i) => a + v * ds[t]![i]!, 0), 0);
      const { grads } = kernelRun(kernel, theta0, gs, ds);
      let checked = 0;
      let largest = 0;
      for (const [name, v] of Object.entries(meta.variables)) {
        const values = v.dataSync() as Float32Array;
        for (let i = 0; i < values.length; i += 2) {
          const eps = 3e-3;
          const at = (delta: number) => {
            const w = Float32Array.from(values);
            w[i] = w[i]! + delta;
            v.assign(tf.tensor(w, v.shape));
            return objective();
          };
          const numeric = (at(eps) - at(-eps)) / (2 * eps);
          v.assign(tf.tensor(values, v.shape));
          const diff = Math.abs(grads![name]![i]! - numeric);
          expect(diff <= 2e-3 + 2e-2 * Math.abs(numeric) ? 'ok' : { name, i, analytic: grads![name]![i], numeric }).toBe('ok');
          largest = Math.max(largest, Math.abs(numeric));
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(30);
      expect(largest).toBeGreaterThan(1e-1);
    });
  });

  it('two threads give the updates and meta-gradients one thread gives', () => {
    const n = 203; // 26 tiles, the last one partial
    const rng = Rng.from(3, 'threads');
    const theta0 = Float32Array.from(rng.normals(n, 0, 1));
    const gs = Array.from({ length: 12 }, () => Float32Array.from(rng.normals(n, 0, 1)));
    const ds = Array.from({ length: 12 }, () => Float32Array.from(rng.normals(n, 0, 1)));
    withMeta({ historySize: 5, hidden: 10, minStep: 0.1 }, 4, (meta) => {
      const kernel = meta.optimizer().fused as NormalizedHistoryKernel;
      const one = kernelRun(kernel, theta0, gs, ds, 1);
      const two = kernelRun(kernel, theta0, gs, ds, 2);
      // Each tile's arithmetic is the same in either thread; only the sum of the threads' partial gradients differs.
      expect(two.thetas).toEqual(one.thetas);
      for (const [name, g] of Object.entries(one.grads!)) {
        expect(Math.max(...g.map(Math.abs))).toBeGreaterThan(1e-2);
        g.forEach((v, i) => expect(Math.abs(two.grads![name]![i]! - v)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(v))));
      }
      withTask(leastSquaresTask(203, 5), (task) => {
        const r = checkFusedKernel(meta, task, { length: 5, unrolls: 2, threads: 2 });
        expect(r.gradientNorm).toBeGreaterThan(1e-3);
      });
    });
  });

  it('training.kernel auto meta-trains on the kernel, with the weights the tfjs path gives, and says so', async () => {
    const fused = await trainShort(new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 8 }, 0), { kernel: 'auto' });
    const tape = await trainShort(new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 8 }, 0), { kernel: 'tfjs' });
    expect(fused.path).toMatch(/fused kernel, wasm normalized-history/);
    expect(tape.path).toMatch(/tfjs tape/);
    expectSameTraining(fused, tape);
  });

  it('leaks no tensors and no kernel memory over 200 meta-iterations', async () => {
    const meta = new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 6 }, 0);
    const options = resolveTrainingOptions({ epochs: 10, episodesPerEpoch: 4, steps: 10, unroll: 2, validateEvery: 5, validationTasks: 1, kernel: 'fused' });
    const trainer = new MetaTrainer(familyOf(23), meta, options, 1);
    const counts: number[] = [];
    const bytes: number[] = [];
    try {
      for (let e = 0; e < 10; e++) {
        await trainer.trainEpoch();
        counts.push(tf.memory().numTensors);
        bytes.push(kernelMemoryBytes());
      }
      expect(trainer.metaGradientPath).toMatch(/fused kernel, wasm normalized-history/);
    } finally {
      trainer.dispose();
      meta.dispose();
    }
    expect(10 * 4 * 5).toBe(200);
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(new Set(bytes.slice(1)).size).toBe(1);
  });

  it('the plain-SIMD fallback (no FMA) gives the same meta-gradients as the tfjs path', () => {
    const saved = process.env.L2L_KERNEL_VARIANT;
    process.env.L2L_KERNEL_VARIANT = 'simd';
    try {
      withMeta({ historySize: 6, hidden: 10 }, 8, (meta) => {
        expect(meta.optimizer().fused!.description).toBe('wasm normalized-history (SIMD, no FMA)');
        const r = withTask(leastSquaresTask(27, 2), (task) => checkFusedKernel(meta, task, { length: 6, unrolls: 2 }));
        expect(r.gradientNorm).toBeGreaterThan(1e-3);
      });
    } finally {
      if (saved === undefined) delete process.env.L2L_KERNEL_VARIANT;
      else process.env.L2L_KERNEL_VARIANT = saved;
    }
  });

  it('refuses weights of the wrong size in one line', () => {
    withMeta({ historySize: 5, hidden: 5 }, 0, (meta) => {
      const kernel = new NormalizedHistoryKernel({ ...meta.options, hidden: 6 }, () => meta.variables);
      expect(() => kernel.open(4)).toThrow(/^fused kernel: weight "hidden\/kernel" has 55 entries, the kernel expects 66$/);
    });
  });

  it('the committed .wasm builds are what their AssemblyScript source compiles to', () => {
    const script = path.resolve(__dirname, '../../scripts/build-kernels.mjs');
    const out = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(out).toMatch(/normalized-history\.simd\.wasm: up to date/);
    expect(out).toMatch(/normalized-history\.fma\.wasm: up to date/);
  }, 120_000);
});
