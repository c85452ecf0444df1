import type { NamedTensors } from '../tensor-tree';
import type { MetaOptimizer } from './meta-optimizer';
import type { Task } from './task';

/*
 * The meta-gradient estimator seam (after google/learned_optimization's GradientEstimator): MetaTrainer keeps
 * a population of tasks, each with its own truncation state, and asks the estimator, once per outer step, for
 * an estimate of the gradient of the meta-objective over the next truncation of every task. Truncated BPTT,
 * antithetic ES and Persistent ES (engine/estimators) implement it side by side; plugins add others as
 * components of kind "estimator".
 */

/** The training options an estimator may read: plain values, no experiment file. */
export interface EstimatorTraining {
  /** Which losses of a truncation make its meta-loss: all of them (a sum) or the last step's. */
  readonly lossWeights: 'uniform' | 'last';
  readonly secondDerivatives: boolean;
  readonly checkpointEvery?: number | null;
  readonly workers?: number;
  readonly kernel?: 'auto' | 'tfjs' | 'fused';
  /** Tasks per outer step (the population). */
  readonly tasksPerStep: number;
}

/** What an estimator is built with: the meta-optimizer whose φ it differentiates and the training options. */
export interface EstimatorSetup {
  readonly meta: MetaOptimizer;
  readonly training: EstimatorTraining;
  /**
   * Engine-specific extras the built-in estimators read (how worker threads rebuild the meta-optimizer, the
   * tape's memory limit); plugins may ignore them.
   */
  readonly extras?: Readonly<Record<string, unknown>>;
}

/** One task's truncation state, owned by the estimator that made it (`init`) and advanced by `estimate`. */
export interface TruncationState {
  /** The optimizee loss at the state's current parameters (its particles' mean for population-based states). */
  readonly loss: number;
  dispose(): void;
}

/** One outer step's estimate. */
export interface GradientEstimate {
  /** The meta-gradient estimate by weight name, averaged over the tasks; the caller owns the tensors. */
  readonly grads: NamedTensors;
  /** Each task's meta-loss over this truncation (at the unperturbed φ, or the mean of an antithetic pair). */
  readonly metaLosses: number[];
}

export interface MetaGradientEstimator<S extends TruncationState = TruncationState> {
  readonly type: string;
  /** How meta-gradients are computed, in words (`l2l train` prints it). */
  readonly description: string;
  /** Starts a task's run from `params` (taken over: the estimator disposes them) with minibatches of `batchSeed`. */
  init(task: Task, params: NamedTensors, batchSeed: number): S;
  /**
   * The next `length` optimizee steps of every state, and the estimate of the meta-gradient over them; the
   * states advance. Everything random is drawn from `seed`, so a run is reproducible.
   * `firstTask` is the index of `states[0]` in the episode's population (0 unless the population is split into
   * shards, as @l2l/distributed does): randomness drawn per task is keyed by that index, so a shard draws what
   * the whole population would have drawn for its tasks.
   * May return a promise: on a backend that reads tensors only asynchronously (webgpu) an estimator awaits
   * `tensor.data()`; the states' `loss` must be readable synchronously once it resolves.
   */
  estimate(states: S[], length: number, seed: number, firstTask?: number): GradientEstimate | Promise<GradientEstimate>;
  /** Frees what the estimator holds (worker threads, say); states are disposed by their owner. */
  dispose(): void;
}

/** What a registered estimator component builds: options bound, waiting for the run's setup. */
export interface EstimatorFactory {
  readonly type: string;
  create(setup: EstimatorSetup): MetaGradientEstimator;
}
