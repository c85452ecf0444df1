/**
 * Meta-training tricks as task wrappers: each takes a `Task` and returns a `Task`, so the engine needs to know
 * nothing about what a task is, and any meta-optimizer profits. They apply to the tasks of meta-training
 * episodes only (MetaTrainer builds them through `applyTrainingTricks`); validation and evaluation run on the
 * tasks as they are.
 *
 * From Lv, Jiang & Li 2017, "Learning Gradient Descent: Better Generalization and Longer Horizons" (RNNprop):
 *
 * - Random scaling (`training.randomScale` = r > 0): the optimizee loss becomes f(c ⊙ θ) with
 *   c = exp(U(−r, r)) drawn per coordinate once per episode, and the initial parameters are θ₀ / c, so the
 *   optimizee starts at the same point of f while its coordinates are scaled differently (the gradient of
 *   coordinate i is c_i ∂f, its distance to the optimum 1/c_i as large). A learned optimizer cannot then
 *   overfit the gradient scales of the training tasks.
 * - Combination with a convex function (`training.convexCombination`): the episode minimises
 *   F(θ, x) = f(θ) + g(x) with g(x) = (1/n) Σᵢ (xᵢ − λᵢ)², an extra parameter vector x of n = 20 coordinates
 *   (`CONVEX_PARAM`) starting at 0 and λᵢ ~ U(−1, 1) drawn per episode. The optimizer updates both at once,
 *   so it keeps seeing well-conditioned convex coordinates. This follows the authors' code (optimizee
 *   `Square(x_dim=20)` mixed with coefficient 1); their code also clips each square at 10, which we leave
 *   out so that g stays the convex quadratic the paper describes. With both tricks on, random scaling
 *   applies to x as well (the authors scale their convex part too, with its own r = 1; here one r serves
 *   all coordinates).
 * - Last-step meta-loss (`training.lossWeights: "last"`, already an engine option): the meta-loss of an
 *   unroll is the loss after its last step only, not the sum over its steps (the authors' `use_avg_loss`
 *   off), which lets the optimizer trade early progress for a better end point.
 *
 * Requirement on wrapped tasks: their loss sees c ⊙ θ (an intermediate tensor, freed by tfjs after the forward
 * pass of a gradient) rather than θ itself, so a task loss written as a `tf.customGrad` must read the inputs
 * its gradient needs from `save()`, not from its closure.
 *
 * Everything random is drawn from the seed passed in (MetaTrainer derives it from the run's seed, epoch and
 * episode), so a run stays reproducible.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TrainingOptions } from './options';
import type { Batch, Task } from '../contracts/task';
import { deriveSeed, Rng } from '../random';
import type { NamedTensors } from '../tensor-tree';

/** The name of the extra parameter vector that `convexCombination` adds. */
export const CONVEX_PARAM = 'convexCombination/x';
/** Its number of coordinates (20, as in the RNNprop authors' code). */
export const CONVEX_DIMS = 20;

/**
 * `task` with random per-coordinate scaling: loss(θ) = f(c ⊙ θ), initParams = θ₀ / c, where c = exp(u) and
 * u ~ U(−r, r) independently per coordinate. The scales of parameter `name` are drawn from
 * `Rng.from(seed, 'random-scale', name)`, so they depend only on the seed, the name and the shape; they are
 * made when a parameter is first seen and freed by `dispose`.
 */
export function randomScaling(task: Task, r: number, seed: number): Task {
  if (!(r >= 0) || !Number.isFinite(r)) throw new Error(`randomScaling: r must be a finite number ≥ 0, got ${r}`);
  const scales = new Map<string, tf.Tensor>();
  const scaleOf = (name: string, t: tf.Tensor): tf.Tensor => {
    let c = scales.get(name);
    if (!c) {
      const u = Rng.from(seed, 'random-scale', name).uniforms(t.size, -r, r);
      const values = new Float32Array(t.size);
      for (let i = 0; i < values.length; i++) values[i] = Math.exp(u[i]!);
      // Kept: the first call may come from inside a tidy (a loss under a gradient tape, say).
      c = tf.keep(tf.tensor(values, t.shape, 'float32'));
      scales.set(name, c);
    } else if (c.shape.length !== t.rank || c.shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`randomScaling: parameter "${name}" has shape [${t.shape.join(', ')}], but it was [${c.shape.join(', ')}] before`);
    }
    return c;
  };
  const scaled = (params: NamedTensors): NamedTensors => {
    const out: NamedTensors = {};
    for (const [name, p] of Object.entries(params)) out[name] = tf.mul(p, scaleOf(name, p));
    return out;
  };
  const wrapped: Task = {
    config: task.config,
    initParams(s: number): NamedTensors {
      const inner = task.initParams(s);
      const out: NamedTensors = {};
      for (const [name, p] of Object.entries(inner)) out[name] = tf.div(p, scaleOf(name, p));
      tf.dispose(Object.values(inner));
      return out;
    },
    batch: (step: number, s: number): Batch => task.batch(step, s),
    // c ⊙ θ is an intermediate: tfjs frees it after the forward pass of a gradient, so the wrapped loss must
    // read what its gradient needs from save() (true of tfjs's own ops), not from a customGrad's closure.
    loss: (params: NamedTensors, batch: Batch): tf.Scalar => task.loss(scaled(params), batch),
    dispose(): void {
      tf.dispose([...scales.values()]);
      scales.clear();
      task.dispose();
    },
  };
  // The same parameters, so the same groups.
  if (task.parameterGroups) wrapped.parameterGroups = task.parameterGroups.bind(task);
  if (task.metrics) {
    const metrics = task.metrics.bind(task);
    wrapped.metrics = (params) => {
      const p = tf.tidy(() => scaled(params));
      try {
        return metrics(p);
      } finally {
        tf.dispose(Object.values(p));
      }
    };
  }
  return wrapped;
}

/**
 * `task` combined with a random convex quadratic: parameters gain `CONVEX_PARAM` (`dims` coordinates,
 * starting at 0) and loss(θ, x) = f(θ) + mean((x − λ)²) with λ ~ U(−1, 1) drawn from
 * `Rng.from(seed, 'convex-combination')`.
 */
export function convexCombination(task: Task, seed: number, dims = CONVEX_DIMS): Task {
  if (!Number.isInteger(dims) || dims < 1) throw new Error(`convexCombination: dims must be an integer ≥ 1, got ${dims}`);
  const lambda = tf.keep(tf.tensor1d(Rng.from(seed, 'convex-combination').uniforms(dims, -1, 1)));
  const split = (params: NamedTensors): { x: tf.Tensor; rest: NamedTensors } => {
    const { [CONVEX_PARAM]: x, ...rest } = params;
    if (!x) throw new Error(`convexCombination: the parameters lack "${CONVEX_PARAM}" (got: ${Object.keys(params).join(', ') || 'none'})`);
    return { x, rest };
  };
  const wrapped: Task = {
    config: task.config,
    initParams(s: number): NamedTensors {
      const inner = task.initParams(s);
      if (CONVEX_PARAM in inner) {
        tf.dispose(Object.values(inner));
        throw new Error(`convexCombination: the task already has a parameter named "${CONVEX_PARAM}"`);
      }
      return { ...inner, [CONVEX_PARAM]: tf.zeros([dims]) };
    },
    batch: (step: number, s: number): Batch => task.batch(step, s),
    loss: (params: NamedTensors, batch: Batch): tf.Scalar => {
      const { x, rest } = split(params);
      return tf.add(task.loss(rest, batch), tf.mean(tf.square(tf.sub(x, lambda)))) as tf.Scalar;
    },
    dispose(): void {
      lambda.dispose();
      task.dispose();
    },
  };
  if (task.parameterGroups) {
    // The extra coordinates join the group of the task's first parameter: with per-group optimizers, one of them learns them.
    const groups = task.parameterGroups.bind(task);
    wrapped.parameterGroups = () => {
      const inner = groups();
      const first = Object.values(inner)[0];
      return first === undefined ? inner : { ...inner, [CONVEX_PARAM]: first };
    };
  }
  if (task.metrics) {
    const metrics = task.metrics.bind(task);
    wrapped.metrics = (params) => metrics(split(params).rest);
  }
  return wrapped;
}

/** The options that switch tricks on; absent means off. */
export type TrickOptions = Partial<Pick<TrainingOptions, 'randomScale' | 'convexCombination'>>;

/** True when `options` switch on any task-wrapping trick. */
export function anyTrainingTrick(options: TrickOptions): boolean {
  return (options.randomScale ?? 0) > 0 || options.convexCombination === true;
}

/**
 * The meta-training task for an episode: `task` with the tricks that `options` switch on (convex combination
 * first, then random scaling over all coordinates), or `task` itself when none is on. `seed` is the episode's.
 */
export function applyTrainingTricks(task: Task, options: TrickOptions, seed: number): Task {
  let out = task;
  if (options.convexCombination === true) out = convexCombination(out, deriveSeed(seed, 'convex-combination'));
  const r = options.randomScale ?? 0;
  if (r > 0) out = randomScaling(out, r, deriveSeed(seed, 'random-scale'));
  return out;
}
