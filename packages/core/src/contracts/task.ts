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
   * A promise where the backend reads only asynchronously (webgpu); a number elsewhere keeps sync callers working.
   */
  metrics?(params: NamedTensors): Record<string, number> | Promise<Record<string, number>>;
  /**
   * The loss of `params` over all the data this task's minibatches are drawn from (not one minibatch);
   * optional, for tasks that can compute it. Deterministic tasks return their loss. A promise as for `metrics`.
   */
  fullLoss?(params: NamedTensors): number | Promise<number>;
  /**
   * Which group each parameter belongs to, by parameter name (every name `initParams` returns, no other);
   * optional. Group names are kebab-case (`conv`, `fc`, `layer-0`); every task of a family reports the same
   * assignment, so an experiment can give each group its own optimizer, as DeepMind's `net_assignments`
   * does (one LSTM for conv kernels, one for the rest). A task without groups is one group,
   * `DEFAULT_PARAMETER_GROUP`: one optimizer for everything, the paper's default.
   */
  parameterGroups?(): Record<string, string>;
  /** Releases tensors the task holds (data, fixed matrices). */
  dispose(): void;
}

/** The group of every parameter of a task that reports none. */
export const DEFAULT_PARAMETER_GROUP = 'all';

/** Kebab-case, as component types are. */
export const PARAMETER_GROUP_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * Each parameter's group for a task and its parameter names: the task's own assignment, or every name in
 * `DEFAULT_PARAMETER_GROUP`. Throws when the task's assignment misses a parameter, names one it does not
 * have, or uses a group name that is not kebab-case.
 */
export function parameterGroupsOf(task: Pick<Task, 'parameterGroups'>, names: readonly string[]): Record<string, string> {
  if (typeof task.parameterGroups !== 'function') return Object.fromEntries(names.map((n) => [n, DEFAULT_PARAMETER_GROUP]));
  const groups = task.parameterGroups();
  if (!groups || typeof groups !== 'object' || Array.isArray(groups)) throw new Error(`parameterGroups() must return an object of parameter name → group name, got ${JSON.stringify(groups)}`);
  const missing = names.filter((n) => !Object.hasOwn(groups, n));
  if (missing.length) throw new Error(`parameterGroups() gives no group for parameter(s) ${missing.map((n) => JSON.stringify(n)).join(', ')}`);
  const extra = Object.keys(groups).filter((n) => !names.includes(n));
  if (extra.length) throw new Error(`parameterGroups() names ${extra.map((n) => JSON.stringify(n)).join(', ')}, which initParams does not return`);
  for (const [name, group] of Object.entries(groups)) {
    if (typeof group !== 'string' || !PARAMETER_GROUP_PATTERN.test(group)) {
      throw new Error(`parameterGroups() puts "${name}" in group ${JSON.stringify(group)}; group names are kebab-case (conv, fc, layer-0)`);
    }
  }
  return Object.fromEntries(names.map((n) => [n, groups[n]!]));
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
