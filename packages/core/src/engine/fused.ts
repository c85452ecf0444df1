import * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel, FusedParameter, FusedRun } from '../contracts/fused';
import { parameterGroupsOf, type Task } from '../contracts/task';
import type { NamedTensors } from '../tensor-tree';
import { valueAndGradNamed } from './tape';

/*
 * The engine's side of fused kernels (contracts/fused.ts): the optimizee's parameters and gradients live in flat
 * Float32Arrays (the parameter tensors flattened in name order, back to back); the task still computes its loss
 * and gradient on tensors, with no tape; the kernel updates the parameters and, after an unroll, gives the
 * first-order meta-gradient from the adjoints ∂L/∂θ_{t+1} = w_{t+1}·∇f(θ_{t+1}) that the engine hands it.
 */

/** How named parameter tensors lie on the flat coordinate axis. */
export interface FlatLayout {
  readonly names: readonly string[];
  readonly shapes: readonly number[][];
  readonly offsets: readonly number[];
  readonly total: number;
}

export function flatLayout(params: NamedTensors): FlatLayout {
  const names = Object.keys(params);
  const shapes = names.map((n) => params[n]!.shape.slice());
  const offsets: number[] = [];
  let total = 0;
  for (const n of names) {
    offsets.push(total);
    total += params[n]!.size;
  }
  return { names, shapes, offsets, total };
}

/** The layout's parameters with their sizes and the task's groups: what a kernel's `open` is told. */
export function fusedParameters(task: Pick<Task, 'parameterGroups'>, layout: FlatLayout): FusedParameter[] {
  const groups = parameterGroupsOf(task, layout.names);
  return layout.names.map((name, i) => ({ name, size: layout.shapes[i]!.reduce((a, b) => a * b, 1), group: groups[name]! }));
}

/** Copies named tensors into `out` along the layout. */
export function flattenInto(tensors: NamedTensors, layout: FlatLayout, out: Float32Array): void {
  layout.names.forEach((n, i) => {
    const t = tensors[n];
    if (!t) throw new Error(`fused: tensor "${n}" is missing (have: ${Object.keys(tensors).join(', ')})`);
    out.set(t.dataSync() as Float32Array, layout.offsets[i]);
  });
}

/** Named tensors holding copies of the layout's slices of `flat` (the caller owns them). */
export function unflatten(flat: Float32Array, layout: FlatLayout): NamedTensors {
  const out: NamedTensors = {};
  layout.names.forEach((n, i) => {
    const from = layout.offsets[i]!;
    const shape = layout.shapes[i]!;
    const size = shape.reduce((a, b) => a * b, 1);
    // A copy: the cpu backend keeps the array it is given, and `flat` changes at the next step.
    out[n] = tf.tensor(flat.slice(from, from + size), shape, 'float32');
  });
  return out;
}

/** f(θ) on the minibatch of `step`, with ∇f written to `grads`; no tape, no tensors left behind. */
export function flatLossAndGrad(task: Task, theta: Float32Array, layout: FlatLayout, step: number, batchSeed: number, grads: Float32Array): number {
  return tf.tidy(() => {
    const params = unflatten(theta, layout);
    const { value, grads: g } = valueAndGradNamed(params, (p) => task.loss(p, task.batch(step, batchSeed)));
    flattenInto(g, layout, grads);
    return value.dataSync()[0]!;
  });
}

export interface FusedUnrollResult {
  /** Σ_t w_t f(θ_t) over the unroll's steps (float64 sum of the float32 losses). */
  readonly metaLoss: number;
  /** ∂metaLoss/∂φ by weight name, second derivatives dropped. */
  readonly grads: Record<string, Float32Array>;
  /** f(θ_1..θ_T). */
  readonly losses: Float32Array;
}

/**
 * An optimizee run driven by a fused kernel during meta-training: the episode's parameters, the loss and gradient
 * at them, and the kernel's state, carried from unroll to unroll. The first-order counterpart of
 * `startRun` + `metaGradient` (engine/unroll.ts, engine/meta-gradient.ts), with the same meta-gradient to
 * float32 rounding.
 */
export class FusedEpisode {
  readonly layout: FlatLayout;
  private readonly theta: Float32Array;
  private readonly grads: Float32Array;
  private readonly run: FusedRun;
  private loss: number;
  private step: number;

  /**
   * `from`: the optimizee's initial parameters (taken over: they are disposed), or an episode to continue from
   * (copied: its parameters, gradient, loss, step and the kernel's optimizer state, FusedRun.snapshot).
   */
  constructor(
    private readonly task: Task,
    kernel: FusedKernel,
    from: NamedTensors | FusedEpisode,
    private readonly batchSeed: number,
    private readonly threads = 1,
  ) {
    if (from instanceof FusedEpisode) {
      this.layout = from.layout;
      this.theta = from.theta.slice();
      this.grads = from.grads.slice();
      this.loss = from.loss;
      this.step = from.step;
      this.run = kernel.open(this.layout.total, { threads, parameters: fusedParameters(task, this.layout) });
      const snapshot = from.run.snapshot();
      try {
        this.run.restore(snapshot);
      } catch (e) {
        this.run.dispose();
        throw e;
      } finally {
        snapshot.dispose();
      }
      return;
    }
    this.layout = flatLayout(from);
    this.theta = new Float32Array(this.layout.total);
    this.grads = new Float32Array(this.layout.total);
    this.step = 0;
    try {
      flattenInto(from, this.layout, this.theta);
    } finally {
      tf.dispose(Object.values(from));
    }
    this.run = kernel.open(this.layout.total, { threads, parameters: fusedParameters(task, this.layout) });
    try {
      this.loss = flatLossAndGrad(task, this.theta, this.layout, 0, batchSeed, this.grads);
    } catch (e) {
      this.run.dispose();
      throw e;
    }
  }

  /**
   * A copy of this episode that `kernel` runs from here (a kernel of the same architecture reading other
   * weights: ES and PES perturb φ this way); the caller owns it.
   */
  fork(kernel: FusedKernel): FusedEpisode {
    return new FusedEpisode(this.task, kernel, this, this.batchSeed, this.threads);
  }

  /** The loss at the current parameters (on the minibatch of the current step). */
  get currentLoss(): number {
    return this.loss;
  }

  /** Updates taken so far. */
  get steps(): number {
    return this.step;
  }

  /** The current parameters as tensors (the caller owns them). */
  params(): NamedTensors {
    return unflatten(this.theta, this.layout);
  }

  /**
   * `length` updates and the meta-gradient of Σ_t w_t f(θ_t) over them, w uniform or on the last step only,
   * with φ read afresh from the meta-optimizer.
   */
  unroll(length: number, lossWeights: 'uniform' | 'last'): FusedUnrollResult {
    this.run.reloadWeights();
    this.run.beginUnroll(length);
    const adjoints: Float32Array[] = [];
    const { metaLoss, losses } = this.take(length, lossWeights, (weight) => adjoints.push(weight ? this.grads.slice() : new Float32Array(this.layout.total)));
    return { metaLoss, grads: this.run.backward(adjoints), losses };
  }

  /**
   * `length` updates, forward only (nothing recorded, no meta-gradient): Σ_t w_t f(θ_t) as `unroll` gives it,
   * and the losses; φ read afresh from the meta-optimizer. ES and PES run on this.
   */
  advance(length: number, lossWeights: 'uniform' | 'last'): { metaLoss: number; losses: Float32Array } {
    this.run.reloadWeights();
    return this.take(length, lossWeights);
  }

  /** `length` updates with the loss and gradient after each; `after(w_t)` runs once the gradient at θ_{t+1} is in. */
  private take(length: number, lossWeights: 'uniform' | 'last', after?: (weight: number) => void): { metaLoss: number; losses: Float32Array } {
    const losses = new Float32Array(length);
    let metaLoss = 0;
    for (let t = 0; t < length; t++) {
      this.run.step(this.grads, this.theta);
      this.step++;
      this.loss = flatLossAndGrad(this.task, this.theta, this.layout, this.step, this.batchSeed, this.grads);
      losses[t] = this.loss;
      const weight = lossWeights === 'uniform' || t === length - 1 ? 1 : 0;
      metaLoss += weight * this.loss;
      after?.(weight);
    }
    return { metaLoss, losses };
  }

  dispose(): void {
    this.run.dispose();
  }
}

/** f(θ_0..θ_steps) of a run with a fused kernel, and the final parameters (the caller owns them). */
export function runFusedKernel(
  task: Task,
  kernel: FusedKernel,
  options: { steps: number; initSeed: number; batchSeed: number; threads?: number },
): { losses: Float32Array; final: NamedTensors } {
  const params = task.initParams(options.initSeed);
  const layout = flatLayout(params);
  const theta = new Float32Array(layout.total);
  try {
    flattenInto(params, layout, theta);
  } finally {
    tf.dispose(Object.values(params));
  }
  const grads = new Float32Array(layout.total);
  const losses = new Float32Array(options.steps + 1);
  const run = kernel.open(layout.total, { threads: options.threads, parameters: fusedParameters(task, layout) });
  try {
    for (let step = 0; step < options.steps; step++) {
      losses[step] = flatLossAndGrad(task, theta, layout, step, options.batchSeed, grads);
      run.step(grads, theta);
    }
  } finally {
    run.dispose();
  }
  losses[options.steps] = tf.tidy(() => {
    const p = unflatten(theta, layout);
    return task.loss(p, task.batch(options.steps, options.batchSeed)).dataSync()[0]!;
  });
  return { losses, final: unflatten(theta, layout) };
}
