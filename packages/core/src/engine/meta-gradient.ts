import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../contracts/optimizer';
import type { Task } from '../contracts/task';
import { disposeTree, type NamedTensors, type TensorTree } from '../tensor-tree';
import { untaped } from './tape';
import { unroll, type Carry, type UnrollOptions } from './unroll';

export interface MetaGradientOptions extends UnrollOptions {
  /**
   * Gradient checkpointing: steps per recomputed segment. Null, 0, or at least `length`: the plain unroll,
   * whose tape holds every step at once.
   */
  readonly checkpointEvery?: number | null;
}

/** An unroll's meta-loss and meta-gradient; the caller owns (and disposes) every tensor. */
export interface MetaGradient {
  readonly metaLoss: tf.Scalar;
  /** ∂metaLoss/∂φ under the meta-optimizer's names, for the weights the meta-loss depends on. */
  readonly grads: NamedTensors;
  /** f(θ_1..θ_T), for logs. */
  readonly losses: tf.Tensor1D;
  /** The carry after the unroll. */
  readonly next: Carry;
}

/**
 * One unroll from `carry` and the gradient of its meta-loss with respect to `variables` (the meta-optimizer's
 * weights, by its names): what MetaTrainer does per unroll.
 *
 * With `checkpointEvery` = S below the unroll's length the same gradient is computed with a tape of S steps
 * instead of the whole unroll (gradient checkpointing, Chen et al. 2016): the unroll first runs without a tape,
 * keeping only the carries at segment boundaries; then each segment, last first, is recomputed on a tape and
 * backpropagated from the adjoint of its end carry, the gradient of everything after it with respect to that
 * carry, obtained from the segment after it: grad of [segment meta-loss + Σ sum(adjoint ⊙ carry_end)] with
 * respect to [carry_start, φ]. The weight gradients of the segments add up to the plain unroll's (to float32
 * rounding). The last segment runs once, on the tape, so the extra cost is a forward pass over the other
 * steps. Needs an optimizer whose update is a deterministic function of its inputs, as the contract asks.
 */
export function metaGradient(
  task: Task,
  optimizer: Optimizer,
  carry: Carry,
  variables: Readonly<Record<string, tf.Variable>>,
  options: MetaGradientOptions,
): MetaGradient {
  const every = options.checkpointEvery ?? 0;
  if (!(every > 0 && every < options.length)) return plainMetaGradient(task, optimizer, carry, variables, options);
  return checkpointedMetaGradient(task, optimizer, carry, variables, options, every);
}

function plainMetaGradient(task: Task, optimizer: Optimizer, carry: Carry, variables: Readonly<Record<string, tf.Variable>>, options: UnrollOptions): MetaGradient {
  let next: Carry | undefined;
  let losses: tf.Tensor1D | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const r = unroll(task, optimizer, carry, options);
    next = r.next;
    losses = r.losses;
    return r.metaLoss;
  }, Object.values(variables));
  // tf.variableGrads keys gradients by tfjs's variable names; the meta-optimizer's names are ours.
  const named: NamedTensors = {};
  for (const [name, v] of Object.entries(variables)) if (grads[v.name]) named[name] = grads[v.name]!;
  return { metaLoss: value, grads: named, losses: losses!, next: next! };
}

/**
 * The tensors of a carry that later steps are differentiated through, by path: the optimizer's state, and with
 * second derivatives also the loss and gradient (otherwise constants of the meta-gradient). A tensor that
 * appears twice counts once, at its first path.
 */
function differentiable(carry: Carry, secondDerivatives: boolean): Array<[string, tf.Tensor]> {
  const out: Array<[string, tf.Tensor]> = [];
  const seen = new Set<tf.Tensor>();
  const walk = (node: TensorTree, path: string) => {
    if (node instanceof tf.Tensor) {
      if (node.dtype === 'float32' && !seen.has(node)) {
        seen.add(node);
        out.push([path, node]);
      }
    } else if (Array.isArray(node)) node.forEach((v, i) => walk(v as TensorTree, `${path}[${i}]`));
    else if (node !== null && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v as TensorTree, `${path}.${k}`);
  };
  walk(carry.state.params as TensorTree, 'params');
  walk(carry.state.slots, 'slots');
  if (secondDerivatives) {
    walk(carry.loss, 'loss');
    walk(carry.grads as TensorTree, 'grads');
  }
  return out;
}

function checkpointedMetaGradient(
  task: Task,
  optimizer: Optimizer,
  carry: Carry,
  variables: Readonly<Record<string, tf.Variable>>,
  options: UnrollOptions,
  every: number,
): MetaGradient {
  const segments: UnrollOptions[] = [];
  for (let begin = 0; begin < options.length; begin += every) {
    const last = begin + every >= options.length;
    segments.push({
      ...options,
      length: Math.min(every, options.length - begin),
      // "last" weights only the unroll's last step, which is in its last segment.
      lossWeights: options.lossWeights === 'last' && !last ? 'none' : options.lossWeights,
    });
  }
  const K = segments.length;
  const vars = Object.values(variables);
  const starts: Carry[] = [carry];
  const metaLosses: tf.Scalar[] = [];
  const lossParts: tf.Tensor1D[] = [];
  const sums = new Map<tf.Variable, tf.Tensor>();
  let adjoint: Map<string, tf.Tensor> | null = null;
  let next: Carry | undefined;
  // Frees a carry's tensors except those an earlier boundary or the result still holds (an optimizer may pass
  // tensors on unchanged).
  const release = (c: Carry | undefined, upTo: number) => {
    if (c) disposeTree(c as unknown as TensorTree, [...starts.slice(0, upTo), next] as unknown as TensorTree);
  };
  try {
    // Forward without a tape, keeping the carry at the start of each segment (the last one runs taped below).
    for (let k = 0; k < K - 1; k++) {
      let end: Carry | undefined;
      let losses: tf.Tensor1D | undefined;
      const metaLoss = untaped(() =>
        tf.tidy(() => {
          const r = unroll(task, optimizer, starts[k]!, segments[k]!);
          end = r.next;
          losses = r.losses;
          return r.metaLoss;
        }),
      );
      metaLosses.push(metaLoss);
      lossParts.push(losses!);
      starts.push(end!);
    }
    // Backward, one segment at a time from the last.
    for (let k = K - 1; k >= 0; k--) {
      const start = starts[k]!;
      const xs = k > 0 ? differentiable(start, options.secondDerivatives) : [];
      const lambda: Map<string, tf.Tensor> | null = adjoint;
      let end: Carry | undefined;
      let losses: tf.Tensor1D | undefined;
      const { value, grads } = tf.engine().gradients(
        () => {
          const r = unroll(task, optimizer, start, segments[k]!);
          end = r.next;
          losses = r.losses;
          if (!lambda) return r.metaLoss;
          const terms: tf.Tensor[] = [r.metaLoss];
          for (const [path, t] of differentiable(r.next, options.secondDerivatives)) {
            const l = lambda.get(path);
            if (l) terms.push(tf.sum(tf.mul(l, t)));
          }
          return terms.length === 1 ? r.metaLoss : (tf.addN(terms) as tf.Scalar);
        },
        [...xs.map(([, t]) => t), ...vars],
        undefined,
        true,
      );
      vars.forEach((v, i) => {
        const g = grads[xs.length + i];
        if (!g) return;
        const prev = sums.get(v);
        if (prev) {
          sums.set(v, tf.add(prev, g));
          prev.dispose();
          g.dispose();
        } else sums.set(v, g);
      });
      if (adjoint) for (const t of adjoint.values()) t.dispose();
      adjoint = new Map();
      xs.forEach(([path], i) => {
        if (grads[i]) adjoint!.set(path, grads[i]!);
      });
      if (k === K - 1) {
        next = end;
        metaLosses.push(value as tf.Scalar);
        lossParts.push(losses!);
      } else {
        // The recomputed end carry equals starts[k + 1] (already freed) and its logged losses the forward's.
        release(end, k + 1);
        losses!.dispose();
        value.dispose();
      }
      if (k > 0) release(starts.pop(), k);
    }
    const metaLoss = tf.tidy(() => tf.addN(metaLosses) as tf.Scalar);
    const losses = tf.tidy(() => tf.concat(lossParts) as tf.Tensor1D);
    const named: NamedTensors = {};
    for (const [name, v] of Object.entries(variables)) {
      const g = sums.get(v);
      if (g) named[name] = g;
    }
    sums.clear();
    return { metaLoss, grads: named, losses, next: next! };
  } catch (e) {
    disposeTree([next, ...starts.slice(1)] as unknown as TensorTree, carry as unknown as TensorTree);
    throw e;
  } finally {
    if (adjoint) for (const t of adjoint.values()) t.dispose();
    for (const t of sums.values()) t.dispose();
    tf.dispose([...metaLosses, ...lossParts]);
  }
}
