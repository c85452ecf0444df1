import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import type { Optimizer, OptimizerState } from '../contracts/optimizer';
import type { Split, Task, TaskConfig } from '../contracts/task';
import { disposeTree, type NamedTensors } from '../tensor-tree';
import { TinyFamily, TinyMeta, trainingOptions } from './engine.fixture';
import { MetaTrainer } from './meta-trainer';
import { readSnapshot, writeSnapshot } from './checkpoint';
import { runOptimizer } from './run';
import { evaluateOptimizer, lastSteps } from './evaluate';
import { canPauseTape, lossNode, stopGradient, untaped, valueAndGradNamed } from './tape';
import { tuneLearningRate } from './tune';
import { disposeCarry, startRun, unroll } from './unroll';

const training = trainingOptions;

beforeAll(async () => {
  await useBackend('cpu');
});

const scalar = (t: tf.Tensor) => t.dataSync()[0]!;

describe('stop-gradient helpers', () => {
  it('can pause the tape on this tfjs version', () => {
    expect(canPauseTape()).toBe(true);
  });

  it('stopGradient cuts the gradient; untaped work is a constant to the outer gradient', () => {
    const x = tf.scalar(3);
    const g1 = tf.grad((v: tf.Tensor) => tf.mul(v, stopGradient(tf.square(v))))(x); // d/dv v·c = c = 9
    expect(scalar(g1)).toBeCloseTo(9, 5);
    const g2 = tf.grad((v: tf.Tensor) => tf.mul(v, untaped(() => tf.square(v))))(x);
    expect(scalar(g2)).toBeCloseTo(9, 5);
    const g3 = tf.grad((v: tf.Tensor) => tf.mul(v, tf.square(v)))(x); // 3v² = 27 without the cut
    expect(scalar(g3)).toBeCloseTo(27, 4);
    tf.dispose([x, g1, g2, g3]);
  });

  it('a gradient computed untaped inside an outer gradient is correct and not differentiated again', () => {
    const x = tf.scalar(2);
    // inner: d/dv v³ = 3v² = 12 at 2; outer: d/dx [x · inner(x)] with inner constant = 12
    const g = tf.grad((v: tf.Tensor) => {
      const inner = untaped(() => tf.grad((u: tf.Tensor) => tf.pow(u, 3))(v));
      return tf.mul(v, inner);
    })(x);
    expect(scalar(g)).toBeCloseTo(12, 4);
    tf.dispose([x, g]);
  });

  it('lossNode has the given value and passes the given gradient', () => {
    const p = { a: tf.tensor1d([1, 2]), b: tf.scalar(3) };
    const f = (q: NamedTensors) => tf.add(tf.sum(tf.square(q.a!)), tf.mul(q.b!, q.b!)) as tf.Scalar;
    const { value, grads } = valueAndGradNamed(p, f);
    const { value: v2, grads: g2 } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => tf.mul(2, lossNode({ a, b }, value, grads)))([p.a, p.b]);
    expect(scalar(v2)).toBeCloseTo(2 * 14, 4);
    expect(Array.from(g2[0]!.dataSync())).toEqual([4, 8]); // 2 · 2a
    expect(scalar(g2[1]!)).toBeCloseTo(12, 5); // 2 · 2b
    tf.dispose([p.a, p.b, value, v2, ...Object.values(grads), ...g2]);
  });
});

/** Σ_{t=1..T} f(θ_t) by a plain loop, the optimizee gradients either recomputed or taken from `frozen`. */
function referenceLoss(task: Task, opt: Optimizer, params0: NamedTensors, T: number, frozen?: NamedTensors[]): { loss: number; grads: NamedTensors[] } {
  return tf.tidy(() => {
    let state: OptimizerState = opt.init(params0);
    const used: NamedTensors[] = [];
    let total = 0;
    let g = valueAndGradNamed(state.params, (p) => task.loss(p, task.batch(0, 0))).grads;
    for (let t = 0; t < T; t++) {
      const grads = frozen ? frozen[t]! : g;
      used.push(Object.fromEntries(Object.entries(grads).map(([k, v]) => [k, tf.keep(tf.clone(v))])));
      state = opt.update(state, grads, { step: t, training: true });
      const r = valueAndGradNamed(state.params, (p) => task.loss(p, task.batch(t + 1, 0)));
      total += scalar(r.value);
      g = r.grads;
    }
    return { loss: total, grads: used } as never;
  }) as never;
}

function metaGrad(task: Task, meta: TinyMeta, params0: NamedTensors, T: number, secondDerivatives: boolean): Record<string, number> {
  const opt = meta.optimizer();
  const carry = startRun(task, opt, tf.tidy(() => ({ x: tf.clone(params0.x!), v: tf.clone(params0.v!) })), 0);
  let next;
  const { value, grads } = tf.variableGrads(() => {
    const r = unroll(task, opt, carry, { length: T, lossWeights: 'uniform', secondDerivatives, batchSeed: 0, training: true });
    next = r.next;
    r.losses.dispose();
    return r.metaLoss;
  }, Object.values(meta.variables));
  const out = { a: scalar(grads[meta.variables.a!.name]!), b: scalar(grads[meta.variables.b!.name]!) };
  tf.dispose([value, ...Object.values(grads)]);
  disposeTree(carry as never, next as never);
  disposeCarry(next!);
  return out;
}

function finiteDifference(meta: TinyMeta, name: 'a' | 'b', eps: number, loss: () => number): number {
  const v = meta.variables[name]!;
  const x0 = scalar(v);
  v.assign(tf.scalar(x0 + eps));
  const up = loss();
  v.assign(tf.scalar(x0 - eps));
  const down = loss();
  v.assign(tf.scalar(x0));
  return (up - down) / (2 * eps);
}

// On both backends: a tensor freed too early reads as garbage on one and fails on the other.
describe.each(['cpu', 'wasm'] as const)('meta-gradient of an unroll (%s)', (backend) => {
  const family = new TinyFamily(3);
  let task: Task;
  let params0: NamedTensors;
  beforeAll(async () => {
    await useBackend(backend);
    task = family.build(family.sample(1, 'train'));
    params0 = task.initParams(7);
  });
  afterAll(async () => {
    task.dispose();
    disposeTree(params0);
    await useBackend('cpu');
  });

  it('matches finite differences with the optimizee gradients frozen (first order, the default)', () => {
    const meta = new TinyMeta(Math.log(0.3));
    const T = 5;
    const frozen = referenceLoss(task, meta.optimizer(), params0, T).grads;
    const engine = metaGrad(task, meta, params0, T, false);
    for (const name of ['a', 'b'] as const) {
      const fd = finiteDifference(meta, name, 1e-2, () => referenceLoss(task, meta.optimizer(), params0, T, frozen).loss);
      expect(Math.abs(engine[name]! - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
    }
    frozen.forEach((g) => disposeTree(g as never));
    meta.dispose();
  });

  it('with secondDerivatives matches finite differences of the true unrolled loss, and differs from first order', () => {
    const meta = new TinyMeta(Math.log(0.3));
    const T = 5;
    const second = metaGrad(task, meta, params0, T, true);
    const first = metaGrad(task, meta, params0, T, false);
    for (const name of ['a', 'b'] as const) {
      const fd = finiteDifference(meta, name, 1e-2, () => {
        const r = referenceLoss(task, meta.optimizer(), params0, T);
        r.grads.forEach((g) => disposeTree(g as never));
        return r.loss;
      });
      expect(Math.abs(second[name]! - fd)).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
    }
    // Dropping the second derivatives changes the gradient by far more than the tolerance above.
    expect(Math.abs(first.a! - second.a!)).toBeGreaterThan(10 * 2e-3 * Math.max(1, Math.abs(second.a!)));
    meta.dispose();
  });

  it('leaves only the kept carry behind', () => {
    const meta = new TinyMeta();
    metaGrad(task, meta, params0, 3, false); // warm-up (variables, caches)
    const before = tf.memory().numTensors;
    metaGrad(task, meta, params0, 3, false);
    metaGrad(task, meta, params0, 3, true);
    expect(tf.memory().numTensors).toBe(before);
    meta.dispose();
  });
});

describe('MetaTrainer', () => {
  const weights = (meta: TinyMeta) => Object.fromEntries(Object.entries(meta.variables).map(([k, v]) => [k, scalar(v)]));

  it('lowers the validation loss on the tiny family', async () => {
    const meta = new TinyMeta(Math.log(0.02), 0);
    const trainer = new MetaTrainer(new TinyFamily(3), meta, training({ epochs: 6, learningRate: 0.05, validateEvery: 6 }), 1);
    const before = await trainer.validate();
    for (let e = 0; e < 6; e++) await trainer.trainEpoch();
    const after = await trainer.validate();
    expect(after).toBeLessThan(0.8 * before);
    trainer.dispose();
    meta.dispose();
  });

  it('meta-trains on train tasks and validates on validation tasks only; eval uses test tasks, tuning train tasks', async () => {
    const built: Split[] = [];
    class Recording extends TinyFamily {
      override build(config: TaskConfig): Task {
        built.push(config.split);
        return super.build(config);
      }
    }
    const family = new Recording(3);
    const meta = new TinyMeta();
    const trainer = new MetaTrainer(family, meta, training({ epochs: 1, validationTasks: 3 }), 2);
    await trainer.trainEpoch();
    expect(new Set(built)).toEqual(new Set(['train', 'validation']));
    built.length = 0;
    await trainer.validate();
    expect(built).toEqual(['validation', 'validation', 'validation']);
    built.length = 0;
    evaluateOptimizer(family, meta.optimizer(), 'learned', { steps: 2, tasks: 2, seed: 0 });
    expect(built).toEqual(['test', 'test']);
    built.length = 0;
    tuneLearningRate(family, () => meta.optimizer(), { learningRates: [1], tasks: 2, steps: 2, seed: 0 });
    expect(built).toEqual(['train', 'train']);
    trainer.dispose();
    meta.dispose();
  });

  it('keeps tf.memory().numTensors constant across epochs', async () => {
    const meta = new TinyMeta();
    const trainer = new MetaTrainer(new TinyFamily(3), meta, training(), 3);
    await trainer.trainEpoch();
    const after1 = tf.memory().numTensors;
    await trainer.trainEpoch();
    await trainer.trainEpoch();
    expect(tf.memory().numTensors).toBe(after1);
    trainer.dispose();
    meta.dispose();
  });

  it('is reproducible from its seed, and resuming from a checkpoint gives the same weights', async () => {
    const run = async (epochs: number) => {
      const meta = new TinyMeta();
      const trainer = new MetaTrainer(new TinyFamily(3), meta, training(), 11);
      for (let e = 0; e < epochs; e++) await trainer.trainEpoch();
      return { meta, trainer };
    };
    const a = await run(3);
    const b = await run(3);
    expect(weights(b.meta)).toEqual(weights(a.meta));
    const other = new TinyMeta();
    const c = new MetaTrainer(new TinyFamily(3), other, training(), 12);
    await c.trainEpoch();
    await c.trainEpoch();
    await c.trainEpoch();
    expect(weights(other)).not.toEqual(weights(a.meta));

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-resume-'));
    const first = await run(2);
    writeSnapshot(dir, 'latest', { metaOptimizer: first.meta.config(), weights: first.meta.getWeights(), trainer: { ...first.trainer.state }, adam: first.trainer.adam.state().tensors });
    const snap = readSnapshot(dir, 'latest');
    const resumedMeta = new TinyMeta();
    resumedMeta.setWeights(snap.weights);
    const resumed = new MetaTrainer(new TinyFamily(3), resumedMeta, training(), 11);
    resumed.restore(snap.trainer!, snap.adam!);
    await resumed.trainEpoch();
    expect(resumed.state.epoch).toBe(3);
    expect(weights(resumedMeta)).toEqual(weights(a.meta));
    for (const r of [a, b, first]) {
      r.trainer.dispose();
      r.meta.dispose();
    }
    c.dispose();
    other.dispose();
    resumed.dispose();
    resumedMeta.dispose();
    fs.rmSync(dir, { recursive: true });
  });

  it('skips an episode whose loss turns NaN, counts it and leaves the weights finite', async () => {
    const meta = new TinyMeta();
    const skips: string[] = [];
    const trainer = new MetaTrainer(new TinyFamily(3, 4), meta, training({ validateEvery: 100 }), 5, { onSkip: (m) => skips.push(m) });
    const before = tf.memory().numTensors;
    const report = await trainer.trainEpoch();
    expect(report.skipped).toBe(2);
    expect(trainer.state.skipped).toBe(2);
    expect(skips[0]).toMatch(/non-finite meta-loss.*epoch 1, episode 1, unroll 2/);
    expect(Object.values(weights(meta)).every(Number.isFinite)).toBe(true);
    // The first unroll (steps 1..3) was finite and applied; the second (reaching step 4) was not.
    expect(trainer.adam.step).toBe(2);
    expect(tf.memory().numTensors).toBe(before + 4); // Adam's m and v for a and b
    trainer.dispose();
    meta.dispose();
  });

  it("stops with a clear error when nonFinite is 'stop'", async () => {
    const meta = new TinyMeta();
    const trainer = new MetaTrainer(new TinyFamily(3, 4), meta, training({ nonFinite: 'stop' }), 5);
    const w0 = weights(meta);
    await expect(trainer.trainEpoch()).rejects.toThrow(/meta-training stopped: non-finite meta-loss/);
    expect(Object.values(weights(meta)).every(Number.isFinite)).toBe(true);
    expect(weights(meta)).not.toEqual(w0); // the finite first unroll was applied
    trainer.dispose();
    meta.dispose();
  });

  it('rejects an unroll longer than the episode', () => {
    const meta = new TinyMeta();
    expect(() => new MetaTrainer(new TinyFamily(3), meta, training({ steps: 5, unroll: 10 }), 0)).toThrow(/unroll \(10\) must not exceed steps \(5\)/);
    meta.dispose();
  });
});

describe('runOptimizer and tuning', () => {
  /** Plain SGD written out, to check the shared evaluation path against hand-derived numbers. */
  const sgd = (lr: number): Optimizer => ({
    name: `sgd(${lr})`,
    init: (params) => ({ params, slots: null, step: 0 }),
    update: (s, g) => ({ params: { x: tf.sub(s.params.x!, tf.mul(lr, g.x!)) }, slots: null, step: s.step + 1 }),
  });
  const parabola: Task = {
    config: { family: 'parabola', split: 'train', seed: 0 },
    initParams: () => ({ x: tf.scalar(1) }),
    batch: () => ({}),
    loss: (p) => tf.square(p.x!) as tf.Scalar,
    dispose: () => undefined,
  };

  it('records f(θ_0..θ_T) and leaves no tensors', () => {
    const before = tf.memory().numTensors;
    const { losses } = runOptimizer(parabola, sgd(0.25), { steps: 3, initSeed: 0, batchSeed: 0 });
    // x ← x − 0.25·2x = x/2: losses 1, 1/4, 1/16, 1/64
    expect(Array.from(losses)).toEqual([1, 0.25, 0.0625, 0.015625]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('evaluates per task: final minibatch loss, mean of the last 10 % of steps, full loss and metrics, by hand', () => {
    // Task i starts at x = 1 + i; SGD lr 0.25 halves x each step, so f(θ_s) = (1+i)²/4^s.
    const at = (i: number): Task => ({
      ...parabola,
      config: { family: 'parabola', split: 'test', seed: i },
      initParams: () => ({ x: tf.scalar(1 + i) }),
      fullLoss: (p) => 2 * p.x!.dataSync()[0]!, // any function of the final params: here 2x
      metrics: (p) => ({ testX: p.x!.dataSync()[0]! }),
    });
    let built = 0;
    const family = { type: 'parabola', sample: (seed: number, split: Split) => ({ family: 'parabola', split, seed }), build: () => at(built++) };
    const r = evaluateOptimizer(family, sgd(0.25), 'sgd', { steps: 20, tasks: 3, seed: 0, metrics: true });
    // Last 10 % of 20 steps: steps 19 and 20.
    expect(lastSteps(20)).toEqual({ from: 19, to: 20 });
    const f = (i: number, s: number) => (1 + i) ** 2 / 4 ** s;
    [0, 1, 2].forEach((i) => {
      expect(r.perTask.final[i]).toBeCloseTo(f(i, 20), 12);
      expect(r.perTask.finalMean[i]).toBeCloseTo((f(i, 19) + f(i, 20)) / 2, 12);
      expect(r.perTask.fullLoss![i]).toBeCloseTo((2 * (1 + i)) / 2 ** 20, 9);
      expect(r.perTask.metrics!.testX![i]).toBeCloseTo((1 + i) / 2 ** 20, 9);
    });
    expect(r.finalMean.mean).toBeCloseTo([0, 1, 2].reduce((a, i) => a + (f(i, 19) + f(i, 20)) / 2, 0) / 3, 12);
    expect(r.fullLoss!.mean).toBeCloseTo((2 * 2) / 2 ** 20, 9);
    expect(lastSteps(100)).toEqual({ from: 91, to: 100 });
    expect(lastSteps(5)).toEqual({ from: 5, to: 5 });
  });

  it('tunes the learning rate to the best mean final loss', () => {
    const family = { type: 'parabola', sample: (seed: number, split: 'train' | 'test') => ({ family: 'parabola', split, seed }), build: () => parabola };
    const r = tuneLearningRate(family, sgd, { learningRates: [0.1, 0.5, 0.9, 2], tasks: 2, steps: 3, seed: 0 });
    expect(r.best).toBe(0.5); // lr 0.5 reaches the minimum in one step
    expect(r.atEdge).toBeNull();
    expect(tuneLearningRate(family, sgd, { learningRates: [0.01, 0.1], tasks: 1, steps: 3, seed: 0 }).atEdge).toBe('high');
    expect(tuneLearningRate(family, sgd, { learningRates: [2, 0.5, 3], tasks: 1, steps: 3, seed: 0 }).atEdge).toBe('low');
    expect(r.grid.find((g) => g.learningRate === 0.5)!.meanFinalLoss).toBe(0);
    expect(r.grid.find((g) => g.learningRate === 2)!.meanFinalLoss).toBe(729); // x ← −3x
  });
});
