import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../contracts/optimizer';
import { parameterGroupsOf, type Task } from '../contracts/task';
import { disposeTree, keepTree, type NamedTensors } from '../tensor-tree';
import { readsSynchronously } from '../backend';
import { runFusedKernel } from './fused';
import { readStep, runSteps, runStepsAsync, settle, type Steps } from './steps';
import { valueAndGradNamed } from './tape';

export interface RunOptions {
  steps: number;
  /** Seed of the initial parameters. */
  initSeed: number;
  /** Seed of the minibatches. */
  batchSeed: number;
  /** Also compute `task.metrics` on the final parameters. */
  metrics?: boolean;
  /**
   * "auto" (the default) runs the optimizer's fused kernel where it has one (contracts/fused.ts): the same
   * losses to float32 rounding, several times faster; "tfjs" always runs its tfjs `update`.
   */
  kernel?: 'auto' | 'tfjs';
  /** Threads of the fused kernel (default 1). */
  threads?: number;
  /** Also compute `task.fullLoss` (the loss over all the task's data) of the final parameters. */
  fullLoss?: boolean;
}

export interface RunResult {
  /** f(θ_0), f(θ_1), ..., f(θ_steps), each on its step's minibatch. */
  losses: Float32Array;
  metrics?: Record<string, number>;
  fullLoss?: number;
}

/**
 * Trains a task's parameters with an optimizer for `steps` updates, outside any gradient tape: the shared
 * evaluation path of baselines and learned optimizers. Leaves no tensors behind. On a backend that reads only
 * asynchronously (webgpu) use `runOptimizerAsync`.
 */
export function runOptimizer(task: Task, optimizer: Optimizer, options: RunOptions): RunResult {
  return runSteps(runOptimizerSteps(task, optimizer, options));
}

/** `runOptimizer` for any backend: awaits the reads the webgpu backend can only do asynchronously. */
export function runOptimizerAsync(task: Task, optimizer: Optimizer, options: RunOptions): Promise<RunResult> {
  return runStepsAsync(runOptimizerSteps(task, optimizer, options));
}

/** `runOptimizer` as Steps (engine/steps.ts): it yields only to wait for reads on a backend that reads asynchronously. */
export function* runOptimizerSteps(task: Task, optimizer: Optimizer, options: RunOptions): Steps<RunResult> {
  // The fused kernel takes each step's gradients on the host: where reads are asynchronous (webgpu) the tfjs
  // update runs on the device instead.
  if (optimizer.fused && options.kernel !== 'tfjs' && readsSynchronously()) {
    const { losses, final } = runFusedKernel(task, optimizer.fused, options);
    try {
      return { losses, ...(yield* finalValues(task, final, options)) };
    } finally {
      disposeTree(final);
    }
  }
  const lossAt = (params: NamedTensors, step: number) => valueAndGradNamed(params, (p) => task.loss(p, task.batch(step, options.batchSeed)));
  const initial = task.initParams(options.initSeed);
  let state = optimizer.init(initial, parameterGroupsOf(task, Object.keys(initial)));
  disposeTree(initial, state); // init may copy the params (then these are ours to free) or keep them
  const losses: tf.Scalar[] = [];
  let stacked: tf.Tensor | undefined;
  try {
    for (let step = 0; step < options.steps; step++) {
      const prev = state;
      let next = prev;
      const loss = tf.tidy(() => {
        const { value, grads } = lossAt(prev.params, step);
        next = keepTree(optimizer.update(prev, grads, { step, loss: value, training: false }));
        return value;
      });
      losses.push(loss);
      disposeTree(prev, next);
      state = next;
    }
    const final = tf.tidy(() => task.loss(state.params, task.batch(options.steps, options.batchSeed)));
    losses.push(final);
    stacked = tf.stack(losses);
    yield* readStep(stacked);
    const values = Float32Array.from(stacked.dataSync() as Float32Array);
    return { losses: values, ...(yield* finalValues(task, state.params, options)) };
  } finally {
    stacked?.dispose();
    disposeTree(losses);
    disposeTree(state);
  }
}

/** The task's metrics and full loss of the final parameters, as `options` asks (a task may compute them asynchronously). */
function* finalValues(task: Task, params: NamedTensors, options: RunOptions): Generator<Promise<unknown>, Pick<RunResult, 'metrics' | 'fullLoss'>, unknown> {
  const metrics = options.metrics && task.metrics ? yield* settle(task.metrics(params)) : undefined;
  const fullLoss = options.fullLoss && task.fullLoss ? yield* settle(task.fullLoss(params)) : undefined;
  return { metrics, fullLoss };
}
