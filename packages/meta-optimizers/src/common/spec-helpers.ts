/*
 * Helpers shared by the meta-optimizers' spec files (not exported from the package index): random named
 * tensors, plain values, and the meta-gradient check against finite differences with the optimizee's
 * gradients frozen, which every learned optimizer's tests run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeTree, isUserError, MetaTrainer, resolveTrainingOptions, Rng, type ComponentRegistry, type EpochReport, type MetaOptimizer, type NamedTensors, type OptimizerState, type Task, type TaskFamily, type TensorTree, type TrainingOptions } from '@l2l/core';

export function randomNamed(rng: Rng, shapes: Record<string, number[]>, std = 1): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, shape] of Object.entries(shapes)) {
    out[name] = tf.tensor(rng.normals(shape.reduce((a, b) => a * b, 1), 0, std), shape);
  }
  return out;
}

export function values(named: NamedTensors): Record<string, number[]> {
  return Object.fromEntries(Object.entries(named).map(([k, t]) => [k, Array.from(t.dataSync())]));
}

/** All values of named tensors in key order, as one array. */
export function flatValues(named: NamedTensors): number[] {
  return Object.values(values(named)).flat();
}

export function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs ${expected.length}`);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  if (!(worst <= tol)) throw new Error(`max difference ${worst} > ${tol}: ${Array.from(actual).slice(0, 8)} vs ${Array.from(expected).slice(0, 8)}`);
}

export interface MetaGradientCheck {
  /** Optimizee steps in the unroll (default 3). */
  steps?: number;
  /** Central-difference step on each weight entry (default 1e-2). */
  eps?: number;
  /** Check every `stride`-th entry of each weight and its last (default 5). */
  stride?: number;
  /** Allowed |analytic − numeric| is `abs + rel·|numeric|` (defaults 5e-4, 5e-3). */
  abs?: number;
  rel?: number;
}

/**
 * Checks the meta-gradient of L(φ) = Σ_t f(θ_t) over a short unroll on f(θ) = ½ Σ κᵢ θᵢ² (3 coordinates in
 * two tensors) against central finite differences. The optimizee gradients are constants, as in meta-training:
 * recorded from untaped copies of θ on the analytic pass, replayed on the finite-difference passes. Throws on
 * a mismatch; returns how many entries were checked and the largest numeric gradient (to show the check is
 * not vacuous). Leaves the weights as they were.
 */
export function checkMetaGradient(mo: MetaOptimizer, check: MetaGradientCheck = {}): { checked: number; largest: number } {
  const { steps = 3, eps = 1e-2, stride = 5, abs = 5e-4, rel = 5e-3 } = check;
  const opt = mo.optimizer();
  const curvature: NamedTensors = { a: tf.tensor1d([0.5, 2]), b: tf.tensor2d([[1]]) };
  const theta0: NamedTensors = { a: tf.tensor1d([1, -0.5]), b: tf.tensor2d([[0.25]]) };
  const f = (p: NamedTensors) =>
    tf.mul(tf.add(tf.sum(tf.mul(curvature.a!, tf.square(p.a!))), tf.sum(tf.mul(curvature.b!, tf.square(p.b!)))), 0.5) as tf.Scalar;
  const metaLoss = (record?: Float32Array[][], replay?: Float32Array[][]) => (): tf.Scalar => {
    let state: OptimizerState = opt.init(theta0);
    let total = tf.scalar(0);
    for (let t = 0; t < steps; t++) {
      let g: NamedTensors;
      if (replay) g = { a: tf.tensor1d(replay[t]![0]!), b: tf.tensor2d(replay[t]![1]!, [1, 1]) };
      else {
        const a = tf.tensor(state.params.a!.dataSync(), [2]);
        const b = tf.tensor(state.params.b!.dataSync(), [1, 1]);
        g = { a: tf.mul(curvature.a!, a), b: tf.mul(curvature.b!, b) };
        record?.push([Float32Array.from(g.a!.dataSync()), Float32Array.from(g.b!.dataSync())]);
      }
      state = opt.update(state, g, { step: t, training: true });
      total = tf.add(total, f(state.params));
    }
    return total;
  };
  const recorded: Float32Array[][] = [];
  const { value, grads } = tf.variableGrads(metaLoss(recorded), Object.values(mo.variables));
  const base = mo.getWeights();
  const lossAt = (weights: NamedTensors): number => {
    mo.setWeights(weights);
    return tf.tidy(() => metaLoss(undefined, recorded)().dataSync()[0]!);
  };
  let checked = 0;
  let largest = 0;
  try {
    const again = lossAt(base);
    if (Math.abs(again - value.dataSync()[0]!) > 1e-5 * Math.max(1, Math.abs(again))) throw new Error(`replayed meta-loss ${again} differs from ${value.dataSync()[0]}`);
    for (const [name, variable] of Object.entries(mo.variables)) {
      const analytic = grads[variable.name]?.dataSync() ?? new Float32Array(variable.size);
      const size = variable.size;
      const entries = [...Array.from({ length: Math.ceil(size / stride) }, (_, i) => i * stride), size - 1];
      for (const e of entries) {
        const at = (delta: number) => {
          const w = {
            ...base,
            [name]: tf.tidy(() => {
              const v = Float32Array.from(base[name]!.dataSync());
              v[e] = v[e]! + delta;
              return tf.tensor(v, base[name]!.shape);
            }),
          };
          const l = lossAt(w);
          w[name]!.dispose();
          return l;
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        largest = Math.max(largest, Math.abs(numeric));
        if (!(Math.abs(analytic[e]! - numeric) <= abs + rel * Math.abs(numeric))) {
          throw new Error(`${name}[${e}]: meta-gradient ${analytic[e]} but finite differences give ${numeric}`);
        }
        checked++;
      }
    }
  } finally {
    mo.setWeights(base);
    tf.dispose([value, ...Object.values(grads), ...Object.values(base), ...Object.values(curvature), ...Object.values(theta0)]);
  }
  return { checked, largest };
}

/**
 * Runs `steps` updates of `mo`'s optimizer on f(θ) = ½‖θ‖² from `params` (gradients = θ), disposing as it goes;
 * then a 3-step meta-gradient. Returns how many tensors each left behind after a warm-up (both should be 0).
 */
export function leakCounts(mo: MetaOptimizer, params: NamedTensors, steps = 5): { updates: number; metaGradients: number } {
  const opt = mo.optimizer();
  const run = (n: number) => {
    let state = opt.init(params);
    for (let t = 0; t < n; t++) {
      const grads = tf.tidy(() => Object.fromEntries(Object.entries(state.params).map(([k, p]) => [k, tf.sub(tf.mul(p, 0.3), 0.1)])));
      const next = opt.update(state, grads, { step: t, training: false });
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      tf.dispose(Object.values(grads));
      state = next;
    }
    disposeTree(state as unknown as TensorTree);
  };
  const meta = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        let state = opt.init(params);
        let total = tf.scalar(0);
        for (let t = 0; t < 3; t++) {
          const g = Object.fromEntries(Object.entries(state.params).map(([k, p]) => [k, tf.tensor(p.dataSync(), p.shape)]));
          state = opt.update(state, g, { step: t, training: true });
          total = tf.add(total, tf.addN(Object.values(state.params).map((p) => tf.sum(tf.square(p)))));
        }
        return total as tf.Scalar;
      }, Object.values(mo.variables));
      return [value, ...Object.values(grads)];
    });
  run(2);
  let before = tf.memory().numTensors;
  run(steps);
  run(steps + 3);
  const updates = tf.memory().numTensors - before;
  tf.dispose(meta());
  before = tf.memory().numTensors;
  tf.dispose(meta());
  tf.dispose(meta());
  return { updates, metaGradients: tf.memory().numTensors - before };
}

/**
 * Each of `bad` (options, expected message) is refused by the registry with a UserError that names the
 * meta-optimizer (`meta-optimizer "lstm"`) and matches the message.
 */
export function expectOptionErrors(reg: ComponentRegistry, type: string, bad: ReadonlyArray<readonly [object, RegExp]>): void {
  for (const [options, message] of bad) {
    let error: unknown;
    try {
      reg.create('meta-optimizer', { type, options: options as never }, { seed: 0, baseDir: '.' });
    } catch (e) {
      error = e;
    }
    // Plain throws (this file is built without jest's types), as expectAllClose does.
    if (!isUserError(error)) throw new Error(`${JSON.stringify(options)}: expected a UserError, got ${error === undefined ? 'no error' : String(error)}`);
    const text = (error as Error).message;
    if (!text.includes(`meta-optimizer "${type}"`)) throw new Error(`${JSON.stringify(options)}: the message does not name meta-optimizer "${type}": ${text}`);
    if (!message.test(text)) throw new Error(`${JSON.stringify(options)}: the message does not match ${message}: ${text}`);
  }
}

/**
 * A least-squares task over parameters split into two tensors of awkward sizes: f(θ) = mean((A·θ − y)²) over a
 * minibatch of 16 of A's 64 rows drawn per step, θ the concatenation of the tensors; `n` coordinates in all.
 */
export function leastSquaresTask(n: number, seed: number): Task {
  const rng = Rng.from(seed, 'least-squares');
  const rows = 16;
  const A = tf.keep(tf.tensor2d(rng.normals(rows * 4 * n, 0, 1 / Math.sqrt(n)), [rows * 4, n]));
  const y = tf.keep(tf.tensor2d(rng.normals(rows * 4, 0, 1), [rows * 4, 1]));
  const first = Math.ceil(n / 3);
  const shapes: Record<string, number[]> = n > 1 ? { a: [first], b: [n - first, 1] } : { a: [1] };
  return {
    config: { family: 'least-squares', split: 'train', seed },
    initParams(s: number): NamedTensors {
      const r = Rng.from(s, 'init');
      return Object.fromEntries(Object.entries(shapes).map(([k, shape]) => [k, tf.tensor(r.normals(shape.reduce((a, b) => a * b, 1)), shape)]));
    },
    batch(step: number, s: number) {
      const r = Rng.from(s, 'batch', step);
      return { rows: tf.tensor1d(Array.from({ length: rows }, () => r.int(rows * 4)), 'int32') };
    },
    loss(params: NamedTensors, batch) {
      return tf.tidy(() => {
        const theta = tf.concat(Object.keys(shapes).map((k) => tf.reshape(params[k]!, [-1, 1])), 0);
        const r = tf.sub(tf.matMul(tf.gather(A, batch.rows!), theta), tf.gather(y, batch.rows!));
        return tf.mean(tf.square(r)) as tf.Scalar;
      });
    },
    dispose() {
      tf.dispose([A, y]);
    },
  };
}

export function familyOf(n: number): TaskFamily {
  return { type: 'least-squares', sample: (seed, split) => ({ family: 'least-squares', split, seed }), build: (c) => leastSquaresTask(n, c.seed) };
}

/**
 * One short epoch of meta-training on `familyOf(17)` (2 episodes of 12 steps in unrolls of 4, validation on 2
 * tasks) with `training` over those defaults: which path ran, the epoch's report and the weights after it.
 * Frees the meta-optimizer.
 */
export async function trainShort(meta: MetaOptimizer, training: Partial<TrainingOptions>): Promise<{ path: string; report: EpochReport; weights: Record<string, Float32Array> }> {
  const options = resolveTrainingOptions({ epochs: 1, episodesPerEpoch: 2, steps: 12, unroll: 4, validateEvery: 1, validationTasks: 2, ...training });
  const trainer = new MetaTrainer(familyOf(17), meta, options, 3);
  try {
    const report = await trainer.trainEpoch();
    return { path: trainer.metaGradientPath, report, weights: Object.fromEntries(Object.entries(meta.variables).map(([k, v]) => [k, v.dataSync() as Float32Array])) };
  } finally {
    trainer.dispose();
    meta.dispose();
  }
}

/** Expects two trainShort results to agree: every weight within `tol`, and the meta-loss and validation loss to 1e-4 relative. */
export function expectSameTraining(a: Awaited<ReturnType<typeof trainShort>>, b: Awaited<ReturnType<typeof trainShort>>, tol = 1e-4): void {
  let weights = 0;
  for (const [k, w] of Object.entries(b.weights)) {
    const f = a.weights[k]!;
    expect(f.length).toBe(w.length);
    let worst = 0;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(f[i]! - w[i]!));
    expect(worst).toBeLessThan(tol);
    weights += w.length;
  }
  expect(weights).toBeGreaterThan(0);
  expect(Math.abs(a.report.metaLoss - b.report.metaLoss)).toBeLessThan(1e-4 * Math.abs(b.report.metaLoss));
  expect(Math.abs(a.report.validationLoss! - b.report.validationLoss!)).toBeLessThan(1e-4 * Math.abs(b.report.validationLoss!));
}
