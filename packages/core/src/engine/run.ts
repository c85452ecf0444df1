import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../contracts/optimizer';
import { parameterGroupsOf, type Task } from '../contracts/task';
import { disposeTree, keepTree, type NamedTensors } from '../tensor-tree';
import { runFusedKernel } from './fused';
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
 * evaluation path of baselines and learned optimizers. Leaves no tensors behind.
 */
export function runOptimizer(task: Task, optimizer: Optimizer, options: RunOptions): RunResult {
  if (optimizer.fused && options.kernel !== 'tfjs') {
    const { losses, final } = runFusedKernel(task, optimizer.fused, options);
    try {
      const metrics = options.metrics && task.metrics ? task.metrics(final) : undefined;
      const fullLoss = options.fullLoss && task.fullLoss ? task.fullLoss(final) : undefined;
      return { losses, metrics, fullLoss };
    } finally {
      disposeTree(final);
    }
  }
  const lossAt = (params: NamedTensors, step: number) => valueAndGradNamed(params, (p) => task.loss(p, task.batch(step, options.batchSeed)));
  const initial = task.initParams(options.initSeed);
  let state = optimizer.init(initial, parameterGroupsOf(task, Object.keys(initial)));
  disposeTree(initial, state); // init may copy the params (then these are ours to free) or keep them
  const losses: tf.Scalar[] = [];
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
    const values = tf.tidy(() => tf.stack(losses).dataSync() as Float32Array);
    const metrics = options.metrics && task.metrics ? task.metrics(state.params) : undefined;
    const fullLoss = options.fullLoss && task.fullLoss ? task.fullLoss(state.params) : undefined;
    return { losses: Float32Array.from(values), metrics, fullLoss };
  } finally {
    disposeTree(losses);
    disposeTree(state);
  }
}
