import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer, OptimizerState } from '../contracts/optimizer';
import { parameterGroupsOf, type Task } from '../contracts/task';
import { disposeTree, keepTree, type NamedTensors } from '../tensor-tree';
import { lossNode, untaped, valueAndGradNamed } from './tape';

/** Where an optimizee run stands between unrolls: the state and the loss and gradient at its params. */
export type Carry = {
  readonly state: OptimizerState;
  /** f(θ) on the minibatch of step `state.step`. */
  readonly loss: tf.Scalar;
  /** ∇f(θ) on that minibatch. */
  readonly grads: NamedTensors;
};

export interface UnrollOptions {
  /** Number of optimizer updates in this unroll. */
  readonly length: number;
  /** Which losses make the meta-loss: all (uniform), the last step's, or none (a segment of a checkpointed unroll before its last). */
  readonly lossWeights: 'uniform' | 'last' | 'none';
  readonly secondDerivatives: boolean;
  /** Seed of the run's minibatches (`task.batch(step, batchSeed)`). */
  readonly batchSeed: number;
  /** Passed to the optimizer's StepContext. */
  readonly training: boolean;
}

function lossAndGrad(task: Task, params: NamedTensors, step: number, batchSeed: number) {
  return valueAndGradNamed(params, (p) => task.loss(p, task.batch(step, batchSeed)));
}

/** The first carry of a run: fresh params (owned from now on by the run) through `optimizer.init`, with their loss and gradient. */
export function startRun(task: Task, optimizer: Optimizer, params: NamedTensors, batchSeed: number): Carry {
  const state = optimizer.init(params, parameterGroupsOf(task, Object.keys(params)));
  disposeTree(params, state); // init may copy the params (then these are ours to free) or keep them
  const { value, grads } = tf.tidy(() => {
    const r = lossAndGrad(task, state.params, state.step, batchSeed);
    return { value: r.value, grads: r.grads };
  });
  return { state, loss: value, grads };
}

export function disposeCarry(carry: Carry): void {
  disposeTree(carry);
}

export interface UnrollResult {
  /** Σ_t w_t f(θ_t) over θ_1..θ_T of this unroll: differentiable in the optimizer's weights. */
  readonly metaLoss: tf.Scalar;
  /** f(θ_1..θ_T), for logs. */
  readonly losses: tf.Tensor1D;
  /** The state after the unroll; its tensors are kept (they outlive the enclosing tidy/gradient scope). */
  readonly next: Carry;
}

/**
 * One truncated unroll (Andrychowicz et al. 2016): `length` updates from `carry`, summing the weighted losses
 * after each update. Call inside `tf.variableGrads` to get the meta-gradient. With `secondDerivatives` off
 * (the default) the optimizee's gradients enter as constants and none of the optimizee's own computation is
 * recorded on the tape: each loss joins the graph through `lossNode`, whose gradient is that same optimizee
 * gradient, so the meta-gradient equals that of the plain sum with second derivatives dropped.
 * The returned `next` carry is kept; everything else is disposed by the enclosing scope.
 */
export function unroll(task: Task, optimizer: Optimizer, carry: Carry, options: UnrollOptions): UnrollResult {
  let state = carry.state;
  let loss = carry.loss;
  let grads = carry.grads;
  const terms: tf.Scalar[] = [];
  const losses: tf.Scalar[] = [];
  for (let t = 0; t < options.length; t++) {
    state = optimizer.update(state, grads, { step: state.step, loss, training: options.training, constantGrads: !options.secondDerivatives });
    const params = state.params;
    const step = state.step;
    const weight = options.lossWeights === 'uniform' || (options.lossWeights === 'last' && t === options.length - 1) ? 1 : 0;
    if (options.secondDerivatives) {
      const r = lossAndGrad(task, params, step, options.batchSeed);
      loss = r.value;
      grads = r.grads;
      if (weight) terms.push(loss);
    } else {
      const r = untaped(() => lossAndGrad(task, params, step, options.batchSeed));
      loss = r.value;
      grads = r.grads;
      if (weight) terms.push(lossNode(params, loss, grads));
    }
    losses.push(loss);
  }
  const metaLoss = terms.length === 0 ? tf.scalar(0) : terms.length === 1 ? terms[0]! : (tf.addN(terms) as tf.Scalar);
  // The carry leaves the gradient scope as constants: the next unroll starts with its history cut.
  const next: Carry = keepTree({ state, loss, grads });
  const logged = keepTree(untaped(() => tf.stack(losses)) as tf.Tensor1D);
  return { metaLoss, losses: logged, next };
}
