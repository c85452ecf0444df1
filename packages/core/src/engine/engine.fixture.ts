/*
 * Small, real components for the engine's tests: a least-squares task family and a two-weight learned
 * optimizer (a learned step size and momentum mix through tanh), so meta-gradients can be checked by hand
 * and by finite differences in milliseconds.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Optimizer, OptimizerState } from '../contracts/optimizer';
import type { Task, TaskConfig, TaskFamily, Split } from '../contracts/task';
import { deriveSeed, Rng } from '../random';
import { cloneNamed, type NamedTensors } from '../tensor-tree';
import type { TrainingOptions } from './options';

/** f(θ) = ‖Wθ − y‖² + ‖v − 0.2‖²/2 (scaled so tanh in TinyMeta stays unsaturated) with params {x: [dims], v: [2]}; `nanAtStep` makes the loss NaN from that step on. */
export class TinyFamily implements TaskFamily {
  readonly type = 'tiny';
  constructor(readonly dims = 3, readonly nanAtStep = -1) {}
  sample(seed: number, split: Split): TaskConfig {
    return { family: 'tiny', split, seed: deriveSeed(seed, split) };
  }
  build(config: TaskConfig): Task {
    const rng = new Rng(config.seed);
    const n = this.dims;
    const W = tf.tensor2d(rng.normals(n * n, 0, 1 / Math.sqrt(n)), [n, n]);
    const y = tf.tensor2d(rng.normals(n, 0, 0.2), [n, 1]);
    const nanAt = this.nanAtStep;
    return {
      config,
      initParams: (seed) => {
        const r = new Rng(seed);
        return { x: tf.tensor1d(r.normals(n, 0, 0.2)), v: tf.tensor1d(r.normals(2, 0, 0.2)) };
      },
      batch: (step) => ({ step: tf.scalar(step) }),
      loss: (p, batch) =>
        tf.tidy(() => {
          const r = tf.sub(tf.matMul(W, tf.reshape(p.x!, [n, 1])), y);
          let l = tf.add(tf.sum(tf.square(r)), tf.mul(0.5, tf.sum(tf.square(tf.sub(p.v!, 0.2))))) as tf.Scalar;
          if (nanAt >= 0) l = tf.add(l, tf.where(tf.greaterEqual(batch.step!, nanAt), tf.scalar(NaN), tf.scalar(0))) as tf.Scalar;
          return l;
        }),
      dispose: () => {
        W.dispose();
        y.dispose();
      },
    };
  }
}

/** Learned update Δ = −exp(a)·tanh(g + b·m), m ← 0.5 m + g: weights a, b (scalars, shared by all coordinates). */
export class TinyMeta implements MetaOptimizer {
  readonly type = 'tiny-meta';
  readonly variables: Record<string, tf.Variable>;
  constructor(a = Math.log(0.1), b = 0.3) {
    this.variables = tf.tidy(() => ({ a: tf.variable(tf.scalar(a)), b: tf.variable(tf.scalar(b)) }));
  }
  config() {
    return { type: 'tiny-meta', options: {} };
  }
  getWeights(): NamedTensors {
    return { a: tf.clone(this.variables.a!), b: tf.clone(this.variables.b!) };
  }
  setWeights(w: NamedTensors): void {
    this.variables.a!.assign(w.a!);
    this.variables.b!.assign(w.b!);
  }
  optimizer(weights?: Readonly<Record<string, tf.Tensor>>): Optimizer {
    const { a, b } = (weights ?? this.variables) as { a: tf.Tensor; b: tf.Tensor };
    return {
      name: 'tiny-meta',
      // Copies the params, as the real optimizers do: the engine must free the ones it passed.
      init: (params) => ({ params: cloneNamed(params), slots: Object.fromEntries(Object.entries(params).map(([k, p]) => [k, tf.zerosLike(p)])), step: 0 }),
      update: (state, grads) => {
        const slots = state.slots as NamedTensors;
        const params: NamedTensors = {};
        const m: NamedTensors = {};
        for (const k of Object.keys(state.params)) {
          m[k] = tf.add(tf.mul(slots[k]!, 0.5), grads[k]!);
          params[k] = tf.sub(state.params[k]!, tf.mul(tf.exp(a), tf.tanh(tf.add(grads[k]!, tf.mul(b, m[k]!)))));
        }
        return { params, slots: m, step: state.step + 1 } as OptimizerState;
      },
    };
  }
  dispose(): void {
    for (const v of Object.values(this.variables)) v.dispose();
  }
}

/**
 * f(θ) = h/2 · ‖θ‖² from θ₀ = (1, …, 1)·scale, the same for every task and step: with `LearnedRate` the losses
 * of an unroll are polynomials in the learning rate, so smoothed meta-objectives have closed forms.
 */
export class QuadraticFamily implements TaskFamily {
  readonly type = 'quadratic-fixture';
  constructor(
    readonly dims = 1,
    readonly h = 1,
    readonly scale = 1,
  ) {}
  sample(seed: number, split: Split): TaskConfig {
    return { family: this.type, split, seed: deriveSeed(seed, split) };
  }
  build(config: TaskConfig): Task {
    const { dims, h, scale } = this;
    return {
      config,
      initParams: () => ({ x: tf.fill([dims], scale) }),
      batch: () => ({}),
      loss: (p) => tf.tidy(() => tf.mul(h / 2, tf.sum(tf.square(p.x!))) as tf.Scalar),
      fullLoss: (p) => tf.tidy(() => (h / 2) * tf.sum(tf.square(p.x!)).dataSync()[0]!),
      dispose: () => {},
    };
  }
}

/** Plain gradient descent with a learned learning rate: θ ← θ − lr·g, φ = {lr} (a scalar). */
export class LearnedRate implements MetaOptimizer {
  readonly type = 'learned-rate';
  readonly coordinatewise = true;
  readonly variables: Record<string, tf.Variable>;
  constructor(lr = 0.3) {
    this.variables = { lr: tf.variable(tf.scalar(lr)) };
  }
  config() {
    return { type: this.type, options: {} };
  }
  getWeights(): NamedTensors {
    return cloneNamed(this.variables);
  }
  setWeights(w: NamedTensors): void {
    this.variables.lr!.assign(w.lr!);
  }
  optimizer(weights?: Readonly<Record<string, tf.Tensor>>): Optimizer {
    const lr = (weights ?? this.variables).lr!;
    return {
      name: 'learned-rate',
      init: (params) => ({ params: cloneNamed(params), slots: {}, step: 0 }),
      update: (state, grads) => {
        const params: NamedTensors = {};
        for (const k of Object.keys(state.params)) params[k] = tf.sub(state.params[k]!, tf.mul(lr, grads[k]!));
        return { params, slots: {}, step: state.step + 1 };
      },
    };
  }
  dispose(): void {
    this.variables.lr!.dispose();
  }
}

/** Meta-training options for the tiny components: 3 epochs of 2 episodes of 6 steps in unrolls of 3; `over` replaces any. */
export const trainingOptions = (over: Partial<TrainingOptions> = {}): TrainingOptions => ({
  epochs: 3,
  episodesPerEpoch: 2,
  steps: 6,
  unroll: 3,
  lossWeights: 'uniform',
  secondDerivatives: false,
  learningRate: 0.01,
  gradClipNorm: null,
  validateEvery: 1,
  validationTasks: 2,
  nonFinite: 'skip',
  ...over,
});
