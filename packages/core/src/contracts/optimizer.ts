import type * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors, TensorTree } from '../tensor-tree';
import type { FusedKernel } from './fused';

/**
 * An optimizer's whole state. Immutable: `update` returns a new state and never assigns in place, so
 * gradients with respect to a learned optimizer's weights can flow through a whole unroll.
 */
// A type alias (not an interface) so a state is itself a TensorTree: `disposeTree(old, next)` works on it.
export type OptimizerState = {
  /** The optimizee's current parameters. */
  readonly params: NamedTensors;
  /** The optimizer's own state (moments, LSTM cells, histories); any tree of tensors. */
  readonly slots: TensorTree;
  /** Number of updates taken so far. */
  readonly step: number;
};

/** What an update may know beyond the gradients. */
export interface StepContext {
  /** Index of this update within the run (0-based); equals `state.step` in a plain run. */
  readonly step: number;
  /** The loss at `state.params`, when the caller computed it. */
  readonly loss?: tf.Scalar;
  /** True during meta-training (tricks such as random scaling apply), false during evaluation. */
  readonly training: boolean;
  /**
   * True when the caller treats `grads` as constants under a gradient tape (first-order meta-gradients: the
   * engine's unrolls with second derivatives off): an optimizer may then leave their derivatives out.
   */
  readonly constantGrads?: boolean;
  /**
   * A factor of the optimizer's learning rate for this update (a schedule's, `training.learningRateSchedule`, for
   * the outer optimizer); absent: 1. Hand-designed optimizers (the baselines) honour it; learned ones ignore it.
   */
  readonly learningRateScale?: number;
}

/**
 * The functional optimizer contract shared by hand-designed baselines and learned optimizers:
 * `init(params) → state`, `update(state, grads, ctx) → state`. Both return tensors the caller owns;
 * a new state may share tensors with the old one or with the `params` given to `init` (free with
 * `disposeTree(old, next)`). Neither disposes its inputs.
 */
export interface Optimizer {
  /** Human-readable name used in results (`adam(lr=0.01)`, `lstm`). */
  readonly name: string;
  /**
   * `groups`: each parameter's group by name (`parameterGroupsOf(task, names)`, contracts/task.ts); absent means
   * every parameter is in `DEFAULT_PARAMETER_GROUP`. Optimizers that treat every parameter alike ignore it;
   * a per-group optimizer (engine/per-group.ts) routes each group to its own optimizer.
   */
  init(params: NamedTensors, groups?: Readonly<Record<string, string>>): OptimizerState;
  update(state: OptimizerState, grads: NamedTensors, ctx: StepContext): OptimizerState;
  /**
   * A fused kernel computing the same updates (and their first-order meta-gradient) outside tfjs, where the
   * optimizer has one (contracts/fused.ts); absent otherwise. Its updates must equal `update`'s to float32
   * rounding; `@l2l/core/testing`'s checkFusedKernel tests that.
   */
  readonly fused?: FusedKernel;
  /**
   * What the optimizer runs on the webgpu backend in place of its ops, in words, where it does (`l2l train`
   * prints it beside the tape: "its update and gradient as one GPU program each"); absent otherwise.
   */
  readonly gpuStep?: string;
}
