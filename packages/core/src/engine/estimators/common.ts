import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../../contracts/optimizer';
import type { Task } from '../../contracts/task';
import { UserError } from '../../errors';
import { Rng } from '../../random';
import { countCoordinates, disposeTree, mapTree, type NamedTensors } from '../../tensor-tree';
import { readStep, settle, type Steps } from '../steps';
import { untaped } from '../tape';
import { unroll, type Carry } from '../unroll';

/** Refuses more threads than the optimizee has coordinates (freeing `params`, which the caller handed over). */
export function checkThreads(workers: number, params: NamedTensors): void {
  if (workers <= 0) return;
  const n = countCoordinates(params);
  if (workers > n) {
    disposeTree(params);
    throw new UserError(`training.workers (${workers}) must not exceed the number of coordinates of the optimizee (${n})`);
  }
}

/** Adds `grads` into `sum` name by name (taking them over: they are disposed or kept in `sum`). */
export function addInto(sum: NamedTensors, grads: NamedTensors): void {
  for (const [name, g] of Object.entries(grads)) {
    const prev = sum[name];
    if (prev) {
      sum[name] = tf.add(prev, g);
      prev.dispose();
      g.dispose();
    } else sum[name] = g;
  }
}

/** Multiplies every tensor of `named` by `c`, replacing them. */
export function scaleInPlace(named: NamedTensors, c: number): void {
  if (c === 1) return;
  for (const [name, t] of Object.entries(named)) {
    named[name] = tf.mul(t, c);
    t.dispose();
  }
}

/** Standard normal noise of φ's shapes, by weight name, drawn from `Rng.from(seed, name)`. */
export function standardNoise(variables: Readonly<Record<string, tf.Tensor>>, seed: number): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(variables)) out[name] = Rng.from(seed, name).normals(v.size);
  return out;
}

/** φ + c·z as new tensors (the caller owns them). */
export function shifted(variables: Readonly<Record<string, tf.Tensor>>, z: Record<string, Float32Array>, c: number): NamedTensors {
  return tf.tidy(() => {
    const out: NamedTensors = {};
    for (const [name, v] of Object.entries(variables)) out[name] = tf.add(v, tf.mul(tf.tensor(z[name]!, v.shape, 'float32'), c));
    return out;
  });
}

/** What an evolution-strategies estimator minimises over a truncation. */
export interface Objective {
  /** The training.lossWeights sum (all losses of the truncation, or the last) or a held-out metric of its end point. */
  readonly lossWeights: 'uniform' | 'last';
  /** `fullLoss` (Task.fullLoss) or the name of one of `Task.metrics`; null: the training losses. */
  readonly metric: string | null;
}

/** A task's held-out metric at `params`; a task without it is a UserError naming the option. */
export function* metricOf(task: Task, params: NamedTensors, metric: string, where: string): Generator<Promise<unknown>, number, unknown> {
  if (metric === 'fullLoss') {
    if (typeof task.fullLoss !== 'function') throw new UserError(`${where}.metric is "fullLoss", but tasks of family "${task.config.family}" have no fullLoss`);
    return yield* settle(task.fullLoss(params));
  }
  const metrics = task.metrics ? yield* settle(task.metrics(params)) : undefined;
  const value = metrics?.[metric];
  if (typeof value !== 'number') {
    throw new UserError(`${where}.metric is "${metric}", but tasks of family "${task.config.family}" report ${metrics ? `only ${Object.keys(metrics).join(', ') || 'no metrics'}` : 'no metrics'} (or use "fullLoss")`);
  }
  return value;
}

/**
 * A forward-only truncation of `length` steps from `carry` with `optimizer`: its objective and the carry after
 * it (owned by the caller; it may share tensors with `carry`, so free it with `disposeTree(next, carry)`), whose
 * loss is then readable synchronously on any backend. As Steps: it waits only for webgpu's reads.
 */
export function* forward(task: Task, optimizer: Optimizer, carry: Carry, length: number, batchSeed: number, objective: Objective, where: string): Steps<{ value: number; next: Carry }> {
  let next: Carry | undefined;
  const sum = untaped(() =>
    tf.tidy(() => {
      const r = unroll(task, optimizer, carry, { length, lossWeights: objective.lossWeights, secondDerivatives: false, batchSeed, training: true });
      next = r.next;
      r.losses.dispose();
      return r.metaLoss;
    }),
  );
  let value: number;
  try {
    yield* readStep(sum, next!.loss);
    value = sum.dataSync()[0]!;
  } catch (e) {
    disposeTree(next!, carry);
    throw e;
  } finally {
    sum.dispose();
  }
  if (objective.metric === null) return { value, next: next! };
  try {
    return { value: yield* metricOf(task, next!.state.params, objective.metric, where), next: next! };
  } catch (e) {
    disposeTree(next!, carry);
    throw e;
  }
}

/** A deep copy of a carry (the caller owns it): particles that start from one state but run apart. */
export function cloneCarry(carry: Carry): Carry {
  return mapTree(carry as never, (t) => tf.clone(t)) as unknown as Carry;
}

/** Named tensors from float64 sums, shaped as φ, scaled by `c`. */
export function toTensors(variables: Readonly<Record<string, tf.Tensor>>, sums: Record<string, Float64Array>, c: number): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, v] of Object.entries(variables)) out[name] = tf.tensor(Float32Array.from(sums[name]!, (x) => x * c), v.shape, 'float32');
  return out;
}

/** Zeroed float64 accumulators shaped as φ. */
export function zeroSums(variables: Readonly<Record<string, tf.Tensor>>): Record<string, Float64Array> {
  return Object.fromEntries(Object.entries(variables).map(([name, v]) => [name, new Float64Array(v.size)]));
}

/** sums += c·z, name by name. */
export function accumulate(sums: Record<string, Float64Array>, z: Record<string, Float32Array | Float64Array>, c: number): void {
  for (const [name, s] of Object.entries(sums)) {
    const zn = z[name]!;
    for (let i = 0; i < s.length; i++) s[i] = s[i]! + c * zn[i]!;
  }
}
