import type * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensor-tree';
import type { JsonObject } from './json';

/**
 * Which tasks a family draws from; the three never share a task (nor, for data sets, the data a task
 * trains on). `train`: meta-training and baseline tuning; `validation`: checkpoint selection and the
 * choice of training settings; `test`: evaluation only.
 */
export type Split = 'train' | 'validation' | 'test';

/** Every split, in the order above. */
export const SPLITS: readonly Split[] = ['train', 'validation', 'test'];

/** Whether `x` names a split (task configs are plain JSON read from files, so families check). */
export function isSplit(x: unknown): x is Split {
  return x === 'train' || x === 'validation' || x === 'test';
}

/** A minibatch: named tensors the task's loss understands (empty for data-free tasks). */
export type Batch = Readonly<Record<string, tf.Tensor>>;

/**
 * What a task family samples: plain JSON that rebuilds exactly one task. `family` names the component
 * type, `split` and `seed` identify the task; families add whatever else they sampled.
 */
export interface TaskConfig extends JsonObject {
  family: string;
  split: Split;
  seed: number;
}

/**
 * An optimizee: a loss over named parameter tensors. The engine knows nothing else about it.
 * Everything random is a function of the task's seed and the seeds passed in, so runs are reproducible.
 */
export interface Task {
  readonly config: TaskConfig;
  /** Fresh parameters; the caller owns (and disposes) them. */
  initParams(seed: number): NamedTensors;
  /** The minibatch for optimizee step `step` of a run seeded with `seed` (data of this task's split). */
  batch(step: number, seed: number): Batch;
  /**
   * The scalar loss of `params` on `batch`; must be differentiable in `params`. A loss written with
   * `tf.customGrad` must `save` what its gradient reads: `params` may be temporaries freed after the
   * forward pass (training tricks pass c ⊙ θ).
   */
  loss(params: NamedTensors, batch: Batch): tf.Scalar;
  /**
   * Held-out metrics of trained parameters; optional. A metric named `test…` (testLoss, testAccuracy)
   * must be measured on data no task of any split trains on (for image data sets: the official test set).
   */
  metrics?(params: NamedTensors): Record<string, number>;
  /**
   * The loss of `params` over all the data this task's minibatches are drawn from (not one minibatch);
   * optional, for tasks that can compute it. Deterministic tasks return their loss.
   */
  fullLoss?(params: NamedTensors): number;
  /** Releases tensors the task holds (data, fixed matrices). */
  dispose(): void;
}

/**
 * A distribution over tasks: `sample` draws a config, `build` turns a config into a task. A single task is
 * a family of one. Train, validation and test configs must never coincide for the same family options.
 */
export interface TaskFamily {
  /** The component type this family was registered under. */
  readonly type: string;
  sample(seed: number, split: Split): TaskConfig;
  build(config: TaskConfig): Task;
  /** Releases shared data (a loaded data set, say). */
  dispose?(): void;
}
