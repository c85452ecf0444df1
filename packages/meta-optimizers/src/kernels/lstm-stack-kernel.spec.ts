import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { applyTrainingTricks, disposeTree, evaluateOptimizer, MetaTrainer, VariableOptimizer, resolveTrainingOptions, Rng, runOptimizer, useBackend, type FusedKernel, type FusedRun, type MetaOptimizer, type NamedTensors, type Task, type TrainingOptions } from '@l2l/core';
import { checkForwardPaths, checkFusedKernel } from '@l2l/core/testing';
import { LstmMetaOptimizer } from '../lstm';
import { RnnpropMetaOptimizer } from '../rnnprop';
import { kernelMemoryBytes } from './kernel-threads';
import { relaxedSimdSupported } from './wasm-module';
import { expectSameTraining, familyOf, leastSquaresTask, trainShort } from '../common/spec-helpers';
import { gateStoreCounts, LstmStackKernel } from './lstm-stack-kernel';

const withMeta = <M extends MetaOptimizer, T>(meta: M, fn: (m: M) => T): T => {
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

describe.each(['wasm', 'cpu'] as const)('the lstm-stack kernel against the tfjs path on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  // Coordinate counts that are not multiples of the tile (8), unrolls of 1, 3 and 20, both loss weightings.
  it.each([
    ['lstm', { hidden: 7, layers: 2 }, 13, 1, 'uniform'],
    ['lstm', {}, 37, 3, 'uniform'],
    ['lstm', {}, 37, 20, 'last'],
    ['lstm', { preprocessing: 'none', layers: 1, hidden: 5, outputScale: 0.05 }, 9, 3, 'uniform'],
    ['lstm', { layers: 3, hidden: 6, k: 5 }, 21, 3, 'last'],
    ['rnnprop', {}, 13, 1, 'uniform'],
    ['rnnprop', {}, 37, 20, 'uniform'],
    ['rnnprop', { inputUnits: 5, hidden: 6, layers: 1, lr: 0.3 }, 21, 3, 'last'],
  ] as const)('%s %j, %d coordinates, unroll %d, losses %s: same meta-gradients and losses', (type, options, n, length, lossWeights) => {
    const before = tf.memory().numTensors;
    const meta = type === 'lstm' ? new LstmMetaOptimizer(options as object, 5) : new RnnpropMetaOptimizer(options as object, 5);
    const r = withMeta(meta, (m) => withTask(leastSquaresTask(n, 3), (task) => checkFusedKernel(m, task, { length, unrolls: 2, lossWeights, tolerance: 1e-5 })));
    expect(r.gradientNorm).toBeGreaterThan(1e-3);
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each(['lstm', 'rnnprop'] as const)('%s with the training tricks (random scaling, convex combination) gives the same meta-gradients', (type) => {
    const meta = type === 'lstm' ? new LstmMetaOptimizer({}, 2) : new RnnpropMetaOptimizer({}, 2);
    withMeta(meta, (m) => {
      const task = applyTrainingTricks(leastSquaresTask(19, 4), { randomScale: 2, convexCombination: true }, 11);
      const r = withTask(task, (t) => checkFusedKernel(m, t, { length: 5, unrolls: 2, tolerance: 1e-5 }));
      expect(r.gradientNorm).toBeGreaterThan(1e-3);
    });
  });

  // ES and PES forward passes: perturbed φ, runs branched from snapshots (the moments of rnnprop's Adam features
  // and of multiscale's are state too), both loss weightings.
  it.each([
    ['lstm', {}, 37, 'uniform', 1],
    ['lstm', { layers: 3, hidden: 6, k: 5 }, 21, 'last', 1],
    ['rnnprop', {}, 13, 'uniform', 1],
    ['rnnprop', { inputUnits: 5, hidden: 6, layers: 1, lr: 0.3 }, 21, 'last', 2],
  ] as const)('%s %j, %d coordinates, losses %s, %d thread(s): ES/PES forward passes give the tfjs path\'s objectives', (type, options, n, lossWeights, threads) => {
    const before = tf.memory().numTensors;
    const meta = type === 'lstm' ? new LstmMetaOptimizer(options as object, 5) : new RnnpropMetaOptimizer(options as object, 5);
    const r = withMeta(meta, (m) => withTask(leastSquaresTask(n, 3), (task) => checkForwardPaths(m, task, { length: 4, truncations: 3, lossWeights, threads })));
    expect(r.value).toBeLessThanOrEqual(1e-5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('ES/PES forward passes with a held-out objective (fullLoss at the truncation\'s end) give the tfjs path\'s', () => {
    const before = tf.memory().numTensors;
    withMeta(new RnnpropMetaOptimizer({}, 5), (m) =>
      withTask(leastSquaresTask(21, 3), (task) => {
        // The loss over all 64 rows of the least-squares problem, at the parameters a truncation ends with.
        const rows = tf.range(0, 64, 1, 'int32');
        try {
          const full: Task = { ...task, fullLoss: (params) => tf.tidy(() => task.loss(params, { rows }).dataSync()[0]!) };
          expect(checkForwardPaths(m, full, { length: 4, truncations: 3, metric: 'fullLoss' }).value).toBeLessThanOrEqual(1e-5);
        } finally {
          rows.dispose();
        }
      }),
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('VariableOptimizer updates variables through the kernel as through tfjs, inside a caller\'s tidy, leaking nothing', () => {
    for (const meta of [new LstmMetaOptimizer({}, 1), new RnnpropMetaOptimizer({}, 1)]) {
      withMeta(meta, (m) => {
        const before = tf.memory().numTensors;
        const train = (kernel: 'auto' | 'tfjs') => {
          // Variables outlive a tidy; their initial values do not.
          const w = tf.tidy(() => tf.variable(tf.tensor2d([[0.5, -1.5, 2], [1, 0.25, -0.75]])));
          const b = tf.tidy(() => tf.variable(tf.tensor1d([0.1, -0.2])));
          const x = tf.tensor2d([[1, 2], [0.5, -1], [2, 0.3]]);
          const opt = new VariableOptimizer(m.optimizer(), { w, b }, { kernel });
          const losses: number[] = [];
          for (let i = 0; i < 25; i++) {
            losses.push(tf.tidy(() => opt.minimize(() => tf.sum(tf.square(tf.add(tf.matMul(x, w), tf.reshape(b, [2, 1]).sum()))) as tf.Scalar)));
          }
          const out = { path: opt.path, steps: opt.step, losses, w: Array.from(w.dataSync()), b: Array.from(b.dataSync()) };
          opt.dispose();
          tf.dispose([w, b, x]);
          return out;
        };
        const fused = train('auto');
        const tape = train('tfjs');
        expect(fused.path).toMatch(/^fused kernel, wasm lstm-stack/);
        expect(tape.path).toBe('tfjs');
        expect(fused.steps).toBe(25);
        for (let i = 0; i < tape.w.length; i++) expect(Math.abs(fused.w[i]! - tape.w[i]!)).toBeLessThan(1e-5);
        for (let i = 0; i < tape.losses.length; i++) expect(Math.abs(fused.losses[i]! - tape.losses[i]!)).toBeLessThanOrEqual(1e-5 * tape.losses[i]! + 1e-6);
        expect(fused.losses[24]!).toBeLessThan(fused.losses[0]!);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  });

  it('evaluation (runOptimizer) gives the same losses on the kernel and on tfjs', () => {
    for (const meta of [new LstmMetaOptimizer({}, 1), new RnnpropMetaOptimizer({}, 1)]) {
      withMeta(meta, (m) =>
        withTask(leastSquaresTask(29, 6), (task) => {
          const opt = m.optimizer();
          expect(opt.fused).toBeDefined();
          const a = runOptimizer(task, opt, { steps: 40, initSeed: 1, batchSeed: 2 });
          const b = runOptimizer(task, opt, { steps: 40, initSeed: 1, batchSeed: 2, kernel: 'tfjs' });
          expect(a.losses.length).toBe(41);
          for (let i = 0; i < b.losses.length; i++) expect(Math.abs(a.losses[i]! - b.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(b.losses[i]!) + 1e-7);
          // The run moved: the comparison is not of constant curves.
          expect(a.losses[40]!).toBeLessThan(a.losses[0]!);
        }),
      );
    }
  });

  it('evaluation with the kernel in 2 threads gives exactly the per-task results of 1 thread', () => {
    withMeta(new LstmMetaOptimizer({}, 2), (m) => {
      const run = (threads: number) => evaluateOptimizer(familyOf(45), m.optimizer(), 'learned', { steps: 30, tasks: 3, seed: 4, threads });
      const one = run(1);
      const two = run(2);
      expect(two.perTask).toEqual(one.perTask);
      expect(two.curve).toEqual(one.curve);
      // The parameters moved (an untrained LSTM need not descend): the comparison is not of constant curves.
      expect(Math.abs(one.curve.mean[30]! - one.curve.mean[0]!)).toBeGreaterThan(1e-2);
    });
  });
});

describe('the lstm-stack kernel', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  /**
   * L(φ) = Σ_t ⟨D_t, θ_{t+1}⟩ over an unroll with fixed gradient inputs g_t and fixed adjoints D_t (what the
   * engine gives the kernel when the optimizee's gradients are constants), computed by the kernel's forward
   * pass alone.
   */
  function objective(kernel: LstmStackKernel, n: number, gs: Float32Array[], ds: Float32Array[]): number {
    const run = kernel.open(n);
    try {
      const theta = new Float32Array(n);
      let sum = 0;
      for (let t = 0; t < gs.length; t++) {
        run.step(gs[t]!, theta);
        for (let i = 0; i < n; i++) sum += ds[t]![i]! * theta[i]!;
      }
      return sum;
    } finally {
      run.dispose();
    }
  }

  it.each(['lstm', 'rnnprop'] as const)('%s: the backward pass matches central finite differences of the forward pass', (type) => {
    const n = 11;
    const U = 4;
    const rng = Rng.from(7, 'fd');
    const gs = Array.from({ length: U }, () => rng.normals(n, 0, 0.3));
    gs[0]![2] = 1e-6; // logAndSign's other branch
    const ds = Array.from({ length: U }, () => rng.normals(n, 0, 1));
    const meta = type === 'lstm' ? new LstmMetaOptimizer({ hidden: 5 }, 3) : new RnnpropMetaOptimizer({ hidden: 5, inputUnits: 4 }, 3);
    withMeta(meta, (m: MetaOptimizer) => {
      const kernel = m.optimizer().fused as LstmStackKernel;
      const run = kernel.open(n);
      let grads: Record<string, Float32Array>;
      try {
        run.beginUnroll(U);
        const theta = new Float32Array(n);
        for (const g of gs) run.step(g, theta);
        grads = run.backward(ds);
      } finally {
        run.dispose();
      }
      let checked = 0;
      let largest = 0;
      for (const [name, v] of Object.entries(m.variables)) {
        const values = v.dataSync() as Float32Array;
        for (let i = 0; i < values.length; i += 3) {
          const eps = 1e-2;
          const at = (delta: number) => {
            const w = Float32Array.from(values);
            w[i] = w[i]! + delta;
            v.assign(tf.tensor(w, v.shape));
            return objective(kernel, n, gs, ds);
          };
          const numeric = (at(eps) - at(-eps)) / (2 * eps);
          v.assign(tf.tensor(values, v.shape));
          expect(Math.abs(grads[name]![i]! - numeric)).toBeLessThanOrEqual(2e-3 + 2e-2 * Math.abs(numeric));
          largest = Math.max(largest, Math.abs(numeric));
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(50);
      expect(largest).toBeGreaterThan(1e-2);
    });
  });

  it.each(['lstm', 'rnnprop'] as const)('%s: NaN and ±Inf gradients give the updates the tfjs path gives', (type) => {
    const meta = type === 'lstm' ? new LstmMetaOptimizer({}, 3) : new RnnpropMetaOptimizer({}, 3);
    withMeta(meta, (m) => {
      const opt = m.optimizer();
      const g = Float32Array.from([NaN, Infinity, -Infinity, 0.5, -1e-7, 0, 3, NaN, 1e30, -2]);
      const n = g.length;
      const params: NamedTensors = { p: tf.tensor1d(new Float32Array(n)) };
      const state = opt.init(params);
      const next = opt.update(state, { p: tf.tensor1d(g) }, { step: 0, training: true });
      const expected = next.params.p!.dataSync() as Float32Array;
      const run = opt.fused!.open(n);
      const theta = new Float32Array(n);
      try {
        run.step(g, theta);
      } finally {
        run.dispose();
      }
      for (let i = 0; i < n; i++) {
        if (Number.isNaN(expected[i]!)) expect(theta[i]).toBeNaN();
        else expect(Math.abs(theta[i]! - expected[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(expected[i]!) + 1e-7);
      }
      expect(Array.from(theta).filter(Number.isNaN).length).toBeGreaterThan(0);
      disposeTree([params, state, next]);
    });
  });

  it('gateStoreCounts fills the top layer first, tile by tile, then the next layer down, within the budget', () => {
    // 32 bytes of header for up to 8 layers; 100 bytes per tile and layer.
    expect(gateStoreCounts(0, 10, 2, 100)).toEqual([0, 0]);
    expect(gateStoreCounts(32 + 99, 10, 2, 100)).toEqual([0, 0]);
    expect(gateStoreCounts(32 + 350, 10, 2, 100)).toEqual([0, 3]);
    expect(gateStoreCounts(32 + 1250, 10, 2, 100)).toEqual([2, 10]);
    expect(gateStoreCounts(1e9, 10, 3, 100)).toEqual([10, 10, 10]);
    // Nine layers need two rows of header.
    expect(gateStoreCounts(32 + 100, 10, 9, 100)).toEqual(new Array(9).fill(0));
    expect(gateStoreCounts(64 + 100, 10, 9, 100)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('the gate store (gates kept for all, some or none of the tiles and layers) gives the meta-gradients recomputation gives, in 1, 2 and 3 threads', () => {
    const n = 61; // 8 tiles, the last one partial
    const rng = Rng.from(3, 'store');
    // Two unrolls, the second longer (the run makes room again) and continuing the first's state.
    const unrolls = [3, 5].map((U) => ({
      gs: Array.from({ length: U }, () => rng.normals(n, 0, 0.2)),
      ds: Array.from({ length: U }, () => rng.normals(n, 0, 1)),
    }));
    withMeta(new LstmMetaOptimizer({}, 6), (m) => {
      const spec = (m.optimizer().fused as LstmStackKernel).spec;
      // The default LSTM's gates: 4·20 rows of 32 bytes per layer, tile and step; a header of 32 bytes.
      const tileBytes = (U: number) => U * 80 * 32;
      const run = (storeBytes: number, threads: number) => {
        const kernel = new LstmStackKernel(spec, () => m.variables, { storeBytes });
        const r = kernel.open(n, { threads });
        try {
          const theta = new Float32Array(n);
          return unrolls.map(({ gs, ds }) => {
            r.beginUnroll(gs.length);
            for (const g of gs) r.step(g, theta);
            return { theta: Array.from(theta), grads: r.backward(ds) };
          });
        } finally {
          r.dispose();
        }
      };
      const reference = run(0, 1);
      const flat = (res: typeof reference) => res.flatMap((u) => Object.values(u.grads).flatMap((g) => Array.from(g)));
      const ref = flat(reference);
      expect(Math.max(...ref.map(Math.abs))).toBeGreaterThan(1e-3);
      // Both layers of every tile; the top layer of every tile and the bottom layer of 2 tiles in the first unroll,
      // the top layer of 6 tiles in the second (10.5 × 7,680 bytes, 12,800 a tile); the top layer of one tile
      // in the first unroll and none in the second — each in 1, 2 and 3 threads.
      let threaded: number[] | undefined;
      for (const storeBytes of [1e9, 32 + 10.5 * tileBytes(3), 32 + 1.2 * tileBytes(3)]) {
        for (const threads of [1, 2, 3]) {
          const got = run(storeBytes, threads);
          expect(got.map((u) => u.theta)).toEqual(reference.map((u) => u.theta));
          const g = flat(got);
          // One thread: the same arithmetic in the same order. Threads sum per-chunk gradients in chunk order: the
          // same bits for any thread count and store size, within rounding of one thread's sum.
          g.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThanOrEqual(threads === 1 ? 0 : 1e-6 * (1 + Math.abs(ref[i]!))));
          if (threads > 1) {
            threaded ??= g;
            expect(g).toEqual(threaded);
          }
        }
      }
    });
  });

  it('snapshots restore only into runs of the same architecture and size (any threads), outside an unroll, until disposed', () => {
    withMeta(new LstmMetaOptimizer({}, 1), (lstm) =>
      withMeta(new RnnpropMetaOptimizer({}, 1), (rnnprop) => {
        const a = lstm.optimizer().fused!.open(20);
        // In 2 threads: a snapshot does not depend on how the tiles are split.
        const b = lstm.optimizer().fused!.open(20, { threads: 2 });
        const other = rnnprop.optimizer().fused!.open(20);
        const small = lstm.optimizer().fused!.open(19);
        try {
          const g = Float32Array.from({ length: 20 }, (_, i) => Math.sin(i));
          const p = new Float32Array(20);
          a.step(g, p);
          const snap = a.snapshot();
          expect(() => other.restore(snap)).toThrow(/a snapshot of wasm lstm-stack .* cannot be restored into a run of wasm lstm-stack .*"adam"/);
          expect(() => small.restore(snap)).toThrow(/a snapshot of 20 coordinates cannot be restored into a run of 19/);
          // b takes a's state: the same gradient then gives the same update, bit for bit.
          b.restore(snap);
          const pa = new Float32Array(20);
          const pb = new Float32Array(20);
          a.step(g, pa);
          b.step(g, pb);
          expect(Array.from(pb)).toEqual(Array.from(pa));
          b.beginUnroll(2);
          expect(() => b.snapshot()).toThrow(/snapshot inside an unroll/);
          expect(() => b.restore(snap)).toThrow(/restore inside an unroll/);
          snap.dispose();
          expect(() => a.restore(snap)).toThrow(/the snapshot was disposed/);
        } finally {
          for (const r of [a, b, other, small]) r.dispose();
        }
      }),
    );
  });

  it('checkForwardPaths catches a kernel whose restore forgets the state', () => {
    withMeta(new RnnpropMetaOptimizer({}, 3), (meta) => {
      const forget = (kernel: FusedKernel): FusedKernel => ({
        description: kernel.description,
        open(n, options) {
          const run = kernel.open(n, options);
          return {
            coordinates: run.coordinates,
            reloadWeights: () => run.reloadWeights(),
            beginUnroll: (length) => run.beginUnroll(length),
            step: (g, p) => run.step(g, p),
            backward: (adjoints) => run.backward(adjoints),
            snapshot: () => run.snapshot(),
            restore: () => {},
            dispose: () => run.dispose(),
          };
        },
      });
      const forgetful = Object.create(meta) as MetaOptimizer;
      (forgetful as { optimizer: MetaOptimizer['optimizer'] }).optimizer = function (weights?: NamedTensors) {
        const o = meta.optimizer(weights);
        return { name: o.name, init: (p, groups) => o.init(p, groups), update: (st, g, ctx) => o.update(st, g, ctx), fused: forget(o.fused!) };
      };
      withTask(leastSquaresTask(13, 3), (task) => {
        expect(() => checkForwardPaths(forgetful, task, { length: 3, truncations: 2 })).toThrow(/checkForwardPaths\(rnnprop\): truncation 1: the fused path's objective is/);
      });
    });
  });

  it('runs open at once share the process\'s gate store: each its share when it first records, whole again once alone', () => {
    const saved = process.env.L2L_KERNEL_STORE_MB;
    // 1.5 MiB: at 400 coordinates (50 tiles) and unrolls of 4, a tile's top-layer gates are 4·80·32 = 10,240 bytes.
    process.env.L2L_KERNEL_STORE_MB = '1.5';
    try {
      withMeta(new LstmMetaOptimizer({}, 2), (m) => {
        const kernel = m.optimizer().fused!;
        const bytes = (r: FusedRun) => (r as unknown as { gateStoreBytes: number }).gateStoreBytes;
        const theta = new Float32Array(400);
        const record = (r: FusedRun) => {
          r.beginUnroll(4);
          r.step(new Float32Array(400).fill(0.1), theta);
        };
        const budget = 1.5 * 2 ** 20;
        const tile = 4 * 80 * 32;
        // One run alone: both layers of all 50 tiles (2·50 tiles' gates and the header) fit.
        const alone = kernel.open(400);
        expect(bytes(alone)).toBe(0);
        record(alone);
        expect(bytes(alone)).toBe(32 + 100 * tile);
        // Three more at once: four runs open, a quarter each (393,216 bytes): the top layer of 38 of the 50 tiles.
        const three = [kernel.open(400), kernel.open(400), kernel.open(400)];
        three.forEach(record);
        expect(Math.floor((budget / 4 - 32) / tile)).toBe(38);
        three.forEach((r) => expect(bytes(r)).toBe(32 + 38 * tile));
        // A run keeps the store it took (its unrolls are no longer); the others' closing does not change it.
        three.forEach((r) => r.dispose());
        record(alone);
        expect(bytes(alone)).toBe(32 + 100 * tile);
        alone.dispose();
        // Alone again, a new run takes the whole budget.
        const again = kernel.open(400);
        record(again);
        expect(bytes(again)).toBe(32 + 100 * tile);
        again.dispose();
      });
    } finally {
      if (saved === undefined) delete process.env.L2L_KERNEL_STORE_MB;
      else process.env.L2L_KERNEL_STORE_MB = saved;
    }
  });

  it('refuses a malformed L2L_KERNEL_STORE_MB in one line', () => {
    const saved = process.env.L2L_KERNEL_STORE_MB;
    process.env.L2L_KERNEL_STORE_MB = 'lots';
    try {
      expect(() => withMeta(new LstmMetaOptimizer({}, 0), (m) => m.optimizer())).toThrow('L2L_KERNEL_STORE_MB must be a non-negative number of MiB, got "lots"');
    } finally {
      if (saved === undefined) delete process.env.L2L_KERNEL_STORE_MB;
      else process.env.L2L_KERNEL_STORE_MB = saved;
    }
  });

  it('two threads give the meta-gradient one thread gives', () => {
    withMeta(new LstmMetaOptimizer({}, 4), (m) =>
      withTask(leastSquaresTask(203, 5), (task) => {
        const one = checkFusedKernel(m, task, { length: 5, unrolls: 2, threads: 1 });
        const two = checkFusedKernel(m, task, { length: 5, unrolls: 2, threads: 2 });
        expect(two.gradient).toBeLessThan(1e-5);
        expect(Math.abs(two.gradientNorm - one.gradientNorm)).toBeLessThan(1e-5 * one.gradientNorm);
      }),
    );
  });

  it('meta-training on the kernel gives the weights the tfjs path gives, and says which path runs', async () => {
    const meta = (type: 'lstm' | 'rnnprop') => (type === 'lstm' ? new LstmMetaOptimizer({}, 0) : new RnnpropMetaOptimizer({}, 0));
    for (const type of ['lstm', 'rnnprop'] as const) {
      const fused = await trainShort(meta(type), { kernel: 'fused' });
      const tape = await trainShort(meta(type), { kernel: 'tfjs' });
      expect(fused.path).toMatch(/fused kernel, wasm lstm-stack/);
      expect(tape.path).toMatch(/tfjs tape/);
      expectSameTraining(fused, tape);
    }
  });

  it('ES and PES meta-train on the kernel (auto, and in 2 threads) to the weights the tfjs path gives, and say so', async () => {
    for (const type of ['es', 'pes'] as const) {
      // σ 0.1: an estimate is (L⁺ − L⁻)/(2σ)·z, so the paths' float32 rounding of the losses (~1e-7 relative) reaches
      // it multiplied by 1/(2σ); checkForwardPaths compares the objectives themselves.
      const estimator = { type, options: { sigma: 0.1, samples: 2 } };
      const tape = await trainShort(new LstmMetaOptimizer({}, 0), { estimator, kernel: 'tfjs' });
      expect(tape.path).toMatch(/, tfjs forward passes \(training\.kernel "tfjs"\)$/);
      for (const workers of [0, 2]) {
        const fused = await trainShort(new LstmMetaOptimizer({}, 0), { estimator, kernel: 'auto', workers });
        expect(fused.path).toMatch(new RegExp(`, fused forward passes \\(wasm lstm-stack \\(SIMD.*\\), ${Math.max(1, workers)} threads?\\)$`));
        expectSameTraining(fused, tape);
      }
    }
  });

  it.each([undefined, { type: 'es' }, { type: 'pes' }])('refuses more threads (training.workers) than coordinates, in the words of the tfjs path (estimator %j)', async (estimator) => {
    await withMeta(new LstmMetaOptimizer({ hidden: 3 }, 0), async (m) => {
      const t = new MetaTrainer(familyOf(5), m, resolveTrainingOptions({ workers: 6, epochs: 1, episodesPerEpoch: 1, steps: 2, unroll: 2, kernel: 'fused', ...(estimator && { estimator }) }), 0);
      try {
        await expect(t.trainEpoch()).rejects.toThrow('training.workers (6) must not exceed the number of coordinates of the optimizee (5)');
      } finally {
        t.dispose();
      }
    });
  });

  it('training.kernel "fused" is refused with second derivatives, and auto falls back to the tape', () => {
    withMeta(new LstmMetaOptimizer({}, 0), (m) => {
      expect(() => new MetaTrainer(familyOf(5), m, resolveTrainingOptions({ kernel: 'fused', secondDerivatives: true }), 0)).toThrow(/first-order|second derivatives/);
      const t = new MetaTrainer(familyOf(5), m, resolveTrainingOptions({ secondDerivatives: true }), 0);
      expect(t.metaGradientPath).toMatch(/tfjs tape \(second derivatives are on\)/);
      t.dispose();
    });
  });

  /**
   * `epochs` epochs of 4 episodes of 5 unrolls (20 meta-iterations each) on the kernel with `training`: the path
   * that ran, and the live tensors and kernel memory after each epoch.
   */
  const leakRun = async (epochs: number, training: Partial<TrainingOptions> = {}) => {
    const meta = new LstmMetaOptimizer({ hidden: 6 }, 0);
    const options = resolveTrainingOptions({ epochs, episodesPerEpoch: 4, steps: 10, unroll: 2, validateEvery: 5, validationTasks: 1, kernel: 'fused', ...training });
    const trainer = new MetaTrainer(familyOf(23), meta, options, 1);
    const counts: number[] = [];
    const bytes: number[] = [];
    try {
      for (let e = 0; e < epochs; e++) {
        await trainer.trainEpoch();
        counts.push(tf.memory().numTensors);
        bytes.push(kernelMemoryBytes());
      }
      return { path: trainer.metaGradientPath, counts, bytes };
    } finally {
      trainer.dispose();
      meta.dispose();
    }
  };

  it('leaks no tensors and no kernel memory over 200 meta-iterations', async () => {
    const { counts, bytes } = await leakRun(10);
    expect(counts).toHaveLength(200 / 20);
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(new Set(bytes.slice(1)).size).toBe(1);
  });

  it.each(['es', 'pes'] as const)('%s on the kernel (runs branched every truncation) leaks no tensors and no kernel memory over 100 meta-iterations, in 2 threads', async (type) => {
    const { path: ran, counts, bytes } = await leakRun(5, { workers: 2, estimator: { type, options: { samples: 2 } } });
    expect(ran).toMatch(/fused forward passes \(wasm lstm-stack .*, 2 threads\)$/);
    expect(counts).toHaveLength(100 / 20);
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(new Set(bytes.slice(1)).size).toBe(1);
  });

  it('the committed .wasm builds are what their AssemblyScript source compiles to', () => {
    const script = path.resolve(__dirname, '../../scripts/build-kernels.mjs');
    // Throws (exit 1, naming the stale build) if a committed module differs from a fresh compile.
    const out = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(out).toMatch(/lstm-stack\.simd\.wasm: up to date/);
    expect(out).toMatch(/lstm-stack\.fma\.wasm: up to date/);
  }, 60_000);

  it('the plain-SIMD fallback (no FMA) gives the same meta-gradients as the tfjs path', () => {
    const saved = process.env.L2L_KERNEL_VARIANT;
    process.env.L2L_KERNEL_VARIANT = 'simd';
    try {
      for (const meta of [new LstmMetaOptimizer({}, 8), new RnnpropMetaOptimizer({}, 8)]) {
        withMeta(meta, (m) => {
          expect(m.optimizer().fused!.description).toBe('wasm lstm-stack (SIMD, no FMA)');
          const r = withTask(leastSquaresTask(27, 2), (task) => checkFusedKernel(m, task, { length: 6, unrolls: 2 }));
          expect(r.gradientNorm).toBeGreaterThan(1e-3);
        });
      }
    } finally {
      if (saved === undefined) delete process.env.L2L_KERNEL_VARIANT;
      else process.env.L2L_KERNEL_VARIANT = saved;
    }
  });

  it('reports the variant that runs: FMA where relaxed SIMD validates', () => {
    const k = new LstmStackKernel({ features: 'none', inputUnits: 0, hidden: 2, layers: 1, outputTanh: false, scale: 1 }, () => ({}));
    expect(k.description).toBe(relaxedSimdSupported() ? 'wasm lstm-stack (SIMD + FMA)' : 'wasm lstm-stack (SIMD, no FMA)');
  });
});
