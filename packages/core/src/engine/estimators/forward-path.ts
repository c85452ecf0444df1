import * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel } from '../../contracts/fused';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import type { Task } from '../../contracts/task';
import { disposeTree, type NamedTensors } from '../../tensor-tree';
import { FusedEpisode } from '../fused';
import { disposeCarry, startRun, type Carry } from '../unroll';
import { runSteps, runWhereReadable } from '../steps';
import { cloneCarry, forward, metricOf, type Objective } from './common';

/** A truncation's objective and the run after it. */
export interface Forwarded<R> {
  readonly value: number;
  readonly next: R;
}

/**
 * Where the runs of a forward-only estimator (ES, PES) live: tfjs carries, or a fused kernel's episodes. The
 * estimators ask for truncations with given weights and never look inside a run, so both paths give them the
 * same objective values to float32 rounding.
 */
export interface ForwardPath<R> {
  /** What runs the forward passes, for the train output. */
  readonly description: string;
  /** A run of `task` from `params` (taken over). */
  start(task: Task, params: NamedTensors, batchSeed: number): R;
  /** An independent copy of a run (the caller owns it). */
  clone(run: R): R;
  /** The loss at the run's current parameters. */
  loss(run: R): number;
  /**
   * A truncation of `length` steps from `run` with φ = `weights` (null: the meta-optimizer's own): its objective
   * and the run after it (the caller owns it; `run` is left as it was), whose `loss` reads synchronously. A
   * promise only where the backend reads asynchronously (webgpu).
   */
  forward(task: Task, run: R, weights: NamedTensors | null, length: number, batchSeed: number, objective: Objective, where: string): Forwarded<R> | Promise<Forwarded<R>>;
  /** Frees `run`, except what it shares with `keep` (a run that `forward` gave from it, or it from). */
  discard(run: R, keep: R): void;
  /** Frees `run`. */
  dispose(run: R): void;
}

/** Forward passes on tfjs with no tape: any meta-optimizer that builds its optimizer from given weights. */
export class TfjsForwardPath implements ForwardPath<Carry> {
  constructor(
    private readonly meta: MetaOptimizer,
    readonly description: string,
  ) {}

  start(task: Task, params: NamedTensors, batchSeed: number): Carry {
    return startRun(task, this.meta.optimizer(), params, batchSeed);
  }

  clone(run: Carry): Carry {
    return cloneCarry(run);
  }

  loss(run: Carry): number {
    return run.loss.dataSync()[0]!;
  }

  forward(task: Task, run: Carry, weights: NamedTensors | null, length: number, batchSeed: number, objective: Objective, where: string): Forwarded<Carry> | Promise<Forwarded<Carry>> {
    return runWhereReadable(forward(task, weights ? this.meta.optimizer(weights) : this.meta.optimizer(), run, length, batchSeed, objective, where));
  }

  discard(run: Carry, keep: Carry): void {
    disposeTree(run, keep);
  }

  dispose(run: Carry): void {
    disposeCarry(run);
  }
}

/**
 * Forward passes on the meta-optimizer's fused kernel (engine/fused.ts), in `threads` threads: a perturbed φ
 * runs on the kernel of the optimizer built from it, started from a snapshot of the run it branches from.
 */
export class FusedForwardPath implements ForwardPath<FusedEpisode> {
  constructor(
    private readonly meta: MetaOptimizer,
    private readonly kernel: FusedKernel,
    private readonly threads: number,
    readonly description: string,
  ) {}

  start(task: Task, params: NamedTensors, batchSeed: number): FusedEpisode {
    return new FusedEpisode(task, this.kernel, params, batchSeed, this.threads);
  }

  clone(run: FusedEpisode): FusedEpisode {
    return run.fork(this.kernel);
  }

  loss(run: FusedEpisode): number {
    return run.currentLoss;
  }

  // Only where reads are synchronous (fusedKernelFor): the kernel takes its gradients on the host.
  forward(task: Task, run: FusedEpisode, weights: NamedTensors | null, length: number, _batchSeed: number, objective: Objective, where: string): Forwarded<FusedEpisode> {
    const kernel = weights ? this.meta.optimizer(weights).fused : this.kernel;
    if (!kernel) throw new Error(`meta-optimizer "${this.meta.type}": the optimizer built from given weights has no fused kernel, the one built from its own has`);
    const next = run.fork(kernel);
    try {
      const { metaLoss } = next.advance(length, objective.lossWeights);
      if (objective.metric === null) return { value: metaLoss, next };
      const params = next.params();
      try {
        return { value: runSteps(metricOf(task, params, objective.metric, where)), next };
      } finally {
        tf.dispose(Object.values(params));
      }
    } catch (e) {
      next.dispose();
      throw e;
    }
  }

  discard(run: FusedEpisode): void {
    run.dispose();
  }

  dispose(run: FusedEpisode): void {
    run.dispose();
  }
}
