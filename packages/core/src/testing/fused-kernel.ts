import * as tf from '@tensorflow/tfjs-core';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Task } from '../contracts/task';
import { FusedEpisode } from '../engine/fused';
import { metaGradient } from '../engine/meta-gradient';
import { shifted, standardNoise } from '../engine/estimators/common';
import { FusedForwardPath, type ForwardPath, TfjsForwardPath } from '../engine/estimators/forward-path';
import { disposeCarry, startRun } from '../engine/unroll';
import { disposeTree } from '../tensor-tree';
import { ContractError } from './util';

export interface FusedKernelCheckOptions {
  /** Steps per unroll (default 3). */
  length?: number;
  /** Consecutive unrolls compared (default 2: the kernel's state must carry over like the tfjs state). */
  unrolls?: number;
  lossWeights?: 'uniform' | 'last';
  initSeed?: number;
  batchSeed?: number;
  /** Threads of the fused run (default 1). */
  threads?: number;
  /** Largest allowed relative L2 difference of each weight's meta-gradient and of the losses (default 1e-5). */
  tolerance?: number;
}

export interface FusedKernelComparison {
  /** Largest relative L2 difference over the weights' meta-gradients, all unrolls. */
  gradient: number;
  /** Largest relative difference of the per-step losses. */
  loss: number;
  /** Σ over unrolls and weights of ‖∂L/∂φ‖ (tfjs path), to show the comparison is not of zeros. */
  gradientNorm: number;
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

/**
 * Runs the same unrolls of `task` (same initial parameters and minibatches, φ fixed) through a learned
 * optimizer's tfjs path (`metaGradient`, first-order) and its fused kernel (`FusedEpisode`) and compares the
 * meta-gradients and losses. Throws a ContractError naming the meta-optimizer when they differ by more than
 * the tolerance or when its optimizer has no kernel; returns the differences found. Leaves no tensors.
 */
export function checkFusedKernel(meta: MetaOptimizer, task: Task, options: FusedKernelCheckOptions = {}): FusedKernelComparison {
  const { length = 3, unrolls = 2, lossWeights = 'uniform', initSeed = 1, batchSeed = 2, threads = 1, tolerance = 1e-5 } = options;
  const fail = (message: string): never => {
    throw new ContractError(`checkFusedKernel(${meta.type}): ${message}`);
  };
  const optimizer = meta.optimizer();
  if (!optimizer.fused) fail('its optimizer() has no fused kernel');
  const tape: Array<{ grads: Record<string, Float32Array>; losses: Float32Array }> = [];
  let carry = startRun(task, optimizer, task.initParams(initSeed), batchSeed);
  try {
    for (let u = 0; u < unrolls; u++) {
      const r = metaGradient(task, optimizer, carry, meta.variables, { length, lossWeights, secondDerivatives: false, batchSeed, training: true });
      tape.push({
        grads: Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, g.dataSync() as Float32Array])),
        losses: r.losses.dataSync() as Float32Array,
      });
      disposeTree(r.grads);
      tf.dispose([r.metaLoss, r.losses]);
      disposeTree(carry, r.next);
      carry = r.next;
    }
  } finally {
    disposeCarry(carry);
  }
  const episode = new FusedEpisode(task, optimizer.fused!, task.initParams(initSeed), batchSeed, threads);
  const out: FusedKernelComparison = { gradient: 0, loss: 0, gradientNorm: 0 };
  try {
    for (let u = 0; u < unrolls; u++) {
      const r = episode.unroll(length, lossWeights);
      const ref = tape[u]!;
      for (const [name, g] of Object.entries(ref.grads)) {
        const f = r.grads[name];
        if (!f) fail(`the kernel gave no meta-gradient for "${name}"`);
        if (f!.length !== g.length) fail(`meta-gradient of "${name}" has ${f!.length} entries, expected ${g.length}`);
        out.gradient = Math.max(out.gradient, relL2(f!, g));
        out.gradientNorm += Math.sqrt(g.reduce((a, x) => a + x * x, 0));
      }
      for (let t = 0; t < ref.losses.length; t++) {
        const a = r.losses[t]!;
        const b = ref.losses[t]!;
        out.loss = Math.max(out.loss, Math.abs(a - b) / Math.max(Math.abs(b), 1e-30));
      }
    }
  } finally {
    episode.dispose();
  }
  if (!(out.gradient <= tolerance)) fail(`meta-gradients differ from the tfjs path's by ${out.gradient.toExponential(2)} (relative L2), more than ${tolerance}`);
  if (!(out.loss <= tolerance)) fail(`losses differ from the tfjs path's by ${out.loss.toExponential(2)} (relative), more than ${tolerance}`);
  return out;
}

export interface ForwardPathCheckOptions {
  /** Steps per truncation (default 3). */
  length?: number;
  /** Consecutive truncations, each with its own perturbation (default 3). */
  truncations?: number;
  /** Standard deviation of the perturbations of φ (default 0.01). */
  sigma?: number;
  lossWeights?: 'uniform' | 'last';
  initSeed?: number;
  batchSeed?: number;
  /** Threads of the fused runs (default 1). */
  threads?: number;
  /** Largest allowed relative difference of an objective value (default 1e-5). */
  tolerance?: number;
  /** The objective: null (default) for the truncation's losses, or `fullLoss` or a task metric at its end. */
  metric?: string | null;
}

/**
 * Runs ES/PES-style forward passes of `task` on the tfjs path and on the meta-optimizer's fused kernel
 * (estimators/forward-path.ts) and compares their objective values: consecutive truncations, each with φ
 * perturbed by its own σz and continuing from the previous truncation's end (as PES's particles do), then one
 * with φ itself. On the fused path every truncation starts a new run from a snapshot of the previous one
 * (FusedRun.snapshot and restore), so this also checks that a kernel's snapshot holds all of its optimizer
 * state; and it checks that branching leaves a run as it was (the same truncation twice from one run gives the
 * same bits). Throws a ContractError naming the meta-optimizer; returns the largest relative difference. Leaves
 * no tensors.
 */
export function checkForwardPaths(meta: MetaOptimizer, task: Task, options: ForwardPathCheckOptions = {}): { value: number } {
  const { length = 3, truncations = 3, sigma = 0.01, lossWeights = 'uniform', initSeed = 1, batchSeed = 2, threads = 1, tolerance = 1e-5, metric = null } = options;
  const fail = (message: string): never => {
    throw new ContractError(`checkForwardPaths(${meta.type}): ${message}`);
  };
  const kernel = meta.optimizer().fused;
  if (!kernel) fail('its optimizer() has no fused kernel');
  const objective = { lossWeights, metric };
  const where = 'checkForwardPaths';
  // Both paths answer synchronously where the fused kernel runs (cpu, wasm).
  const now = <T>(r: T | Promise<T>): T => (r instanceof Promise ? fail(`needs a backend that reads synchronously (cpu, wasm), not ${tf.getBackend()}`) : r);
  const run = <R>(path: ForwardPath<R>, twice: boolean): number[] => {
    const values: number[] = [];
    let current = path.start(task, task.initParams(initSeed), batchSeed);
    try {
      for (let k = 0; k <= truncations; k++) {
        const weights = k < truncations ? shifted(meta.variables, standardNoise(meta.variables, 1000 + k), sigma) : null;
        try {
          const { value, next } = now(path.forward(task, current, weights, length, batchSeed, objective, where));
          if (twice) {
            const again = now(path.forward(task, current, weights, length, batchSeed, objective, where));
            path.discard(again.next, current);
            if (!Object.is(again.value, value)) fail(`truncation ${k} run twice from one run gave ${value} and ${again.value}: branching changed the run`);
          }
          path.discard(current, next);
          current = next;
          values.push(value);
        } finally {
          if (weights) disposeTree(weights);
        }
      }
    } finally {
      path.dispose(current);
    }
    return values;
  };
  const reference = run(new TfjsForwardPath(meta, 'tfjs'), false);
  const fused = run(new FusedForwardPath(meta, kernel!, threads, 'fused'), true);
  let worst = 0;
  reference.forEach((b, k) => {
    const a = fused[k]!;
    const d = Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
    if (!(d <= tolerance)) fail(`truncation ${k}: the fused path's objective is ${a}, the tfjs path's ${b} (relative difference ${d.toExponential(2)}, more than ${tolerance})`);
    worst = Math.max(worst, d);
  });
  return { value: worst };
}
