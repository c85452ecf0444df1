import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import { resolveTrainingOptions, type TrainingOptions } from '../config/experiment';
import type { Optimizer } from '../contracts/optimizer';
import type { Task } from '../contracts/task';
import { deriveSeed, Rng } from '../random';
import type { NamedTensors } from '../tensor-tree';
import { TinyFamily, TinyMeta } from './engine.fixture';
import { MetaTrainer } from './meta-trainer';
import { anyTrainingTrick, applyTrainingTricks, convexCombination, CONVEX_DIMS, CONVEX_PARAM, randomScaling } from './tricks';
import { valueAndGradNamed } from './tape';

beforeAll(async () => {
  await useBackend('cpu');
});

const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** f(a, b) = Σ w_a a³ + Σ w_b b² over params a [3] and b [2, 1]: not homogeneous, so a wrong scale shows. */
function cubicTask(disposed: { count: number } = { count: 0 }): Task {
  const wa = [0.5, -1, 2];
  const wb = [1.5, 3];
  return {
    config: { family: 'cubic', split: 'train', seed: 0 },
    initParams: (seed) => {
      const r = new Rng(seed);
      return { a: tf.tensor1d(r.normals(3)), b: tf.tensor2d(r.normals(2), [2, 1]) };
    },
    batch: () => ({}),
    loss: (p) =>
      tf.tidy(() => tf.add(tf.sum(tf.mul(tf.tensor1d(wa), tf.pow(p.a!, 3))), tf.sum(tf.mul(tf.tensor2d(wb, [2, 1]), tf.square(p.b!)))) as tf.Scalar),
    metrics: (p) => ({ a0: p.a!.dataSync()[0]! }),
    dispose: () => {
      disposed.count++;
    },
  };
}

/** The scales randomScaling draws for `name`, recomputed here in float64. */
function expectedScales(seed: number, r: number, name: string, size: number): number[] {
  return Array.from(Rng.from(seed, 'random-scale', name).uniforms(size, -r, r), (u) => Math.exp(u));
}

function expectClose(actual: number[], expected: number[], tol: number): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => {
    if (!(Math.abs(v - expected[i]!) <= tol * Math.max(1, Math.abs(expected[i]!)))) {
      throw new Error(`entry ${i}: ${v} vs ${expected[i]} (all: ${actual} vs ${expected})`);
    }
  });
}

describe('randomScaling', () => {
  it('the loss is f(c ⊙ θ) and its gradient c ⊙ ∇f(c ⊙ θ), with c = exp(U(−r, r)) per coordinate', () => {
    const r = 2;
    const task = randomScaling(cubicTask(), r, 17);
    const ca = expectedScales(17, r, 'a', 3);
    const cb = expectedScales(17, r, 'b', 2);
    // A real scaling: within [e^−r, e^r] and not all alike.
    for (const c of [...ca, ...cb]) expect(c >= Math.exp(-r) && c <= Math.exp(r)).toBe(true);
    expect(Math.max(...ca) / Math.min(...ca)).toBeGreaterThan(1.1);
    const a = [0.3, -1.2, 0.7];
    const b = [2, -0.5];
    const params = { a: tf.tensor1d(a), b: tf.tensor2d(b, [2, 1]) };
    const { value, grads } = valueAndGradNamed(params, (p) => task.loss(p, task.batch(0, 0)));
    // By hand: Σ w_a (c a)³ + Σ w_b (c b)²; ∂/∂a = 3 w_a c³ a², ∂/∂b = 2 w_b c² b.
    const wa = [0.5, -1, 2];
    const wb = [1.5, 3];
    const f = a.reduce((s, v, i) => s + wa[i]! * (ca[i]! * v) ** 3, 0) + b.reduce((s, v, i) => s + wb[i]! * (cb[i]! * v) ** 2, 0);
    expectClose(values(value), [f], 1e-5);
    expectClose(values(grads.a!), a.map((v, i) => 3 * wa[i]! * ca[i]! ** 3 * v * v), 1e-5);
    expectClose(values(grads.b!), b.map((v, i) => 2 * wb[i]! * cb[i]! ** 2 * v), 1e-5);
    tf.dispose([value, ...Object.values(grads), ...Object.values(params)]);
    task.dispose();
  });

  it('works with a customGrad loss that saves the input its gradient reads', () => {
    // f(θ) = Σ θ², ∇f = 2θ from the saved input. (c ⊙ θ is an intermediate, which tfjs frees after the forward
    // pass: a gradient function must read it from save(), not from its closure.)
    const square = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([x]);
      return { value: tf.sum(tf.square(x)), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(tf.mul(saved[0]!, 2), dy) };
    }) as (x: tf.Tensor) => tf.Scalar;
    const inner: Task = { ...cubicTask(), loss: (p) => square(p.a!) };
    const task = randomScaling(inner, 1, 2);
    const c = expectedScales(2, 1, 'a', 3);
    const a = [1, -2, 0.5];
    const params = { a: tf.tensor1d(a) };
    const grad = tf.tidy(() => valueAndGradNamed(params, (p) => task.loss(p, {})).grads.a!.dataSync());
    expectClose(Array.from(grad), a.map((v, i) => 2 * c[i]! * c[i]! * v), 1e-5);
    tf.dispose(Object.values(params));
    task.dispose();
  });

  it('divides the initial parameters by c, so the loss starts where the plain task starts', () => {
    const inner = cubicTask();
    const task = randomScaling(inner, 1.5, 4);
    const plain = inner.initParams(9);
    const scaled = task.initParams(9);
    expectClose(values(scaled.a!), values(plain.a!).map((v, i) => v / expectedScales(4, 1.5, 'a', 3)[i]!), 1e-6);
    expectClose(values(scaled.b!), values(plain.b!).map((v, i) => v / expectedScales(4, 1.5, 'b', 2)[i]!), 1e-6);
    expect(scaled.b!.shape).toEqual([2, 1]);
    const l0 = tf.tidy(() => task.loss(scaled, {}).dataSync()[0]!);
    const l1 = tf.tidy(() => inner.loss(plain, {}).dataSync()[0]!);
    expect(l0).toBeCloseTo(l1, 4);
    tf.dispose([...Object.values(plain), ...Object.values(scaled)]);
    task.dispose();
  });

  it('is deterministic in the seed, and another seed scales differently', () => {
    const lossAt = (seed: number) => {
      const task = randomScaling(cubicTask(), 1, seed);
      const p = { a: tf.tensor1d([1, 1, 1]), b: tf.tensor2d([1, 1], [2, 1]) };
      const l = tf.tidy(() => task.loss(p, {}).dataSync()[0]!);
      tf.dispose(Object.values(p));
      task.dispose();
      return l;
    };
    expect(lossAt(3)).toBe(lossAt(3));
    expect(lossAt(3)).not.toBe(lossAt(4));
  });

  it('frees its scales and the task on dispose, passes metrics the scaled parameters, and refuses a changed shape', () => {
    const disposed = { count: 0 };
    const before = tf.memory().numTensors;
    const task = randomScaling(cubicTask(disposed), 1, 5);
    const p = task.initParams(1);
    const m = task.metrics!(p) as Record<string, number>;
    expect(m.a0).toBeCloseTo(p.a!.dataSync()[0]! * expectedScales(5, 1, 'a', 3)[0]!, 5);
    const wrong = { a: tf.zeros([4]), b: tf.zeros([2, 1]) };
    expect(() => task.loss(wrong, {})).toThrow(/"a" has shape \[4\], but it was \[3\]/);
    tf.dispose([...Object.values(p), ...Object.values(wrong)]);
    task.dispose();
    expect(disposed.count).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => randomScaling(cubicTask(), -1, 0)).toThrow(/r must be/);
  });
});

describe('convexCombination', () => {
  it('adds 20 coordinates from 0 and the loss f(θ) + mean((x − λ)²) with λ ~ U(−1, 1) from the seed', () => {
    const inner = cubicTask();
    const task = convexCombination(inner, 8);
    const p = task.initParams(2);
    expect(Object.keys(p)).toEqual(['a', 'b', CONVEX_PARAM]);
    expect(p[CONVEX_PARAM]!.shape).toEqual([CONVEX_DIMS]);
    expect(values(p[CONVEX_PARAM]!)).toEqual(new Array(CONVEX_DIMS).fill(0));
    const lambda = Array.from(Rng.from(8, 'convex-combination').uniforms(CONVEX_DIMS, -1, 1));
    expect(lambda.every((l) => l >= -1 && l < 1)).toBe(true);
    const x = lambda.map((_, i) => (i % 3) - 1);
    const params = { ...p, [CONVEX_PARAM]: tf.tensor1d(x) };
    const f = tf.tidy(() => inner.loss(p, {}).dataSync()[0]!);
    const g = x.reduce((s, v, i) => s + (v - lambda[i]!) ** 2, 0) / CONVEX_DIMS;
    const { value, grads } = valueAndGradNamed(params, (q) => task.loss(q, {}));
    expectClose(values(value), [f + g], 1e-5);
    expectClose(values(grads[CONVEX_PARAM]!), x.map((v, i) => (2 * (v - lambda[i]!)) / CONVEX_DIMS), 1e-5);
    // The rest of the gradient is f's own.
    const plain = valueAndGradNamed({ a: p.a!, b: p.b! }, (q) => inner.loss(q, {}));
    expectClose(values(grads.a!), values(plain.grads.a!), 1e-6);
    expect(task.metrics!(params)).toEqual(inner.metrics!(p));
    expect(() => task.loss({ a: p.a!, b: p.b! }, {})).toThrow(/lack "convexCombination\/x"/);
    tf.dispose([value, ...Object.values(grads), plain.value, ...Object.values(plain.grads), ...Object.values(p), params[CONVEX_PARAM]]);
    task.dispose();
  });

  it('refuses a task that already has its parameter name', () => {
    const inner: Task = { ...cubicTask(), initParams: () => ({ [CONVEX_PARAM]: tf.zeros([2]) }) };
    const task = convexCombination(inner, 0);
    const before = tf.memory().numTensors;
    expect(() => task.initParams(0)).toThrow(/already has a parameter named/);
    expect(tf.memory().numTensors).toBe(before);
    task.dispose();
  });
});

describe('applyTrainingTricks', () => {
  it('is off by default: the schema defaults switch nothing on and the task comes back as it is', () => {
    const defaults = resolveTrainingOptions({});
    expect(defaults.randomScale).toBe(0);
    expect(defaults.convexCombination).toBe(false);
    expect(anyTrainingTrick(defaults)).toBe(false);
    const task = cubicTask();
    expect(applyTrainingTricks(task, defaults, 1)).toBe(task);
    expect(applyTrainingTricks(task, {}, 1)).toBe(task);
    expect(() => resolveTrainingOptions({ randomScale: -1 })).toThrow(/randomScale/);
  });

  it('with both on, scales the convex coordinates too, from seeds derived from the episode seed', () => {
    const task = applyTrainingTricks(cubicTask(), { randomScale: 1, convexCombination: true }, 33);
    const p = task.initParams(0);
    const c = expectedScales(deriveSeed(33, 'random-scale'), 1, CONVEX_PARAM, CONVEX_DIMS);
    const lambda = Array.from(Rng.from(deriveSeed(33, 'convex-combination'), 'convex-combination').uniforms(CONVEX_DIMS, -1, 1));
    // x₀ = 0 / c = 0; at x = 1/c the convex part is mean((1 − λ)²).
    expect(values(p[CONVEX_PARAM]!)).toEqual(new Array(CONVEX_DIMS).fill(0));
    const at = { a: tf.zeros([3]), b: tf.zeros([2, 1]), [CONVEX_PARAM]: tf.tensor1d(c.map((v) => 1 / v)) };
    const l = tf.tidy(() => task.loss(at, {}).dataSync()[0]!);
    expect(l).toBeCloseTo(lambda.reduce((s, v) => s + (1 - v) ** 2, 0) / CONVEX_DIMS, 5);
    tf.dispose([...Object.values(p), ...Object.values(at)]);
    task.dispose();
  });
});

describe('MetaTrainer with training tricks', () => {
  const training = (over: Partial<TrainingOptions> = {}): TrainingOptions => ({
    ...resolveTrainingOptions({ epochs: 2, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 2 }),
    ...over,
  });

  /** TinyMeta whose optimizers record the parameter names they start from. */
  class RecordingMeta extends TinyMeta {
    readonly seen: string[][] = [];
    override optimizer(): Optimizer {
      const inner = super.optimizer();
      return {
        name: inner.name,
        init: (params: NamedTensors) => {
          this.seen.push(Object.keys(params));
          return inner.init(params);
        },
        update: (state, grads, ctx) => inner.update(state, grads, ctx),
      };
    }
  }

  it('meta-trains on wrapped tasks, validates on plain ones, and leaks nothing', async () => {
    const meta = new RecordingMeta();
    const trainer = new MetaTrainer(new TinyFamily(3), meta, training({ randomScale: 1, convexCombination: true }), 3);
    const r1 = await trainer.trainEpoch();
    const after1 = tf.memory().numTensors;
    const r2 = await trainer.trainEpoch();
    expect(tf.memory().numTensors).toBe(after1);
    for (const r of [r1, r2]) {
      expect(Number.isFinite(r.metaLoss)).toBe(true);
      expect(Number.isFinite(r.validationLoss)).toBe(true);
      expect(r.skipped).toBe(0);
    }
    // Training episodes see the extra coordinates; validation runs see the task's own parameters.
    expect(meta.seen.filter((names) => names.includes(CONVEX_PARAM))).toHaveLength(4);
    expect(meta.seen.filter((names) => !names.includes(CONVEX_PARAM)).length).toBeGreaterThan(0);
    for (const names of meta.seen) expect(names.filter((n) => n !== CONVEX_PARAM)).toEqual(['x', 'v']);

    // Validation ignores the tricks: same weights, same validation loss with and without them.
    const plain = new MetaTrainer(new TinyFamily(3), meta, training(), 3);
    expect(await plain.validate()).toBe(await trainer.validate());
    // Training differs: the tricks change the episodes.
    const metaA = new TinyMeta();
    const metaB = new TinyMeta();
    const a = new MetaTrainer(new TinyFamily(3), metaA, training(), 3);
    const b = new MetaTrainer(new TinyFamily(3), metaB, training({ randomScale: 1 }), 3);
    const [ra, rb] = [await a.trainEpoch(), await b.trainEpoch()];
    expect(ra.metaLoss).not.toBe(rb.metaLoss);
    [trainer, plain, a, b].forEach((t) => t.dispose());
    [meta, metaA, metaB].forEach((m) => m.dispose());
  });
});
