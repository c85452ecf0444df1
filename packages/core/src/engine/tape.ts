import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '../tensor-tree';

/*
 * tfjs has no stop-gradient op, and a gradient computed inside an outer `tf.variableGrads` is recorded on the
 * outer tape (so second derivatives flow, and every op of the inner forward and backward pass is kept in
 * memory until the outer gradient is done). These helpers give the engine first-order meta-gradients without
 * either cost.
 */

interface EngineState {
  gradientDepth: number;
  activeTape: unknown[] | null;
}

function engineState(): EngineState | undefined {
  const state = (tf.engine() as unknown as { state?: Partial<EngineState> }).state;
  // `activeTape` only exists once a gradient has been taken, so only `gradientDepth` can be checked up front.
  return state && typeof state.gradientDepth === 'number' ? (state as EngineState) : undefined;
}

/** True when tfjs's engine exposes what `untaped` needs (checked by a test, so an upgrade that breaks it fails loudly). */
export function canPauseTape(): boolean {
  return engineState() !== undefined;
}

/**
 * Runs `fn` with the outer gradient tape paused: nothing it computes is recorded, so its results are
 * constants to any enclosing gradient and no memory is held for them. Gradients computed inside work as
 * usual (on a tape of their own).
 */
export function untaped<T>(fn: () => T): T {
  const state = engineState();
  if (!state || state.gradientDepth === 0) return fn();
  const { gradientDepth, activeTape } = state;
  state.gradientDepth = 0;
  try {
    return fn();
  } finally {
    state.gradientDepth = gradientDepth;
    state.activeTape = activeTape;
  }
}

/** A copy of `x` that gradients do not flow through (tfjs lacks `tf.stopGradient`). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return untaped(() => tf.clone(x)) as T;
}

/**
 * The scalar `value` = f(params) placed in the graph as a node whose gradient with respect to `params` is the
 * given constant `grads` (= ∇f(params), the optimizee gradient already computed). Its meta-gradient is exactly
 * that of f(params) with second derivatives dropped, without recording f's forward pass.
 */
export function lossNode(params: NamedTensors, value: tf.Scalar, grads: NamedTensors): tf.Scalar {
  const names = Object.keys(params);
  const node = tf.customGrad((...args: unknown[]) => {
    // Saved tensors outlive the forward pass (the tape keeps them until the backward pass is done).
    const save = args[args.length - 1] as tf.GradSaveFunc;
    save(names.map((n) => grads[n]!));
    return { value: tf.clone(value), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => saved.map((g) => tf.mul(g, dy)) };
  });
  return node(...names.map((n) => params[n]!)) as tf.Scalar;
}

/** f(params) and ∇f(params) for a loss over named tensors. */
export function valueAndGradNamed(params: NamedTensors, loss: (p: NamedTensors) => tf.Scalar): { value: tf.Scalar; grads: NamedTensors } {
  const names = Object.keys(params);
  const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
    const p: NamedTensors = {};
    names.forEach((n, i) => (p[n] = xs[i]!));
    return loss(p);
  })(names.map((n) => params[n]!));
  const out: NamedTensors = {};
  names.forEach((n, i) => (out[n] = grads[i]!));
  return { value: value as tf.Scalar, grads: out };
}
