import * as tf from '@tensorflow/tfjs-core';
import type { EstimatorFactory, GradientEstimate, TruncationState } from '../contracts/estimator';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Optimizer } from '../contracts/optimizer';
import type { Task } from '../contracts/task';
import type { ComponentDefinition } from '../registry/component';
import { cloneNamed, type NamedTensors } from '../tensor-tree';
import { attempt, attemptAsync, numTensors, prepare, show, snapshotNamed, deepEqual, testQuadratic, type CheckOptions, type Fail } from './util';

/** θ ← θ − lr·(g + k·m), m ← 0.5m + g: a two-weight learned optimizer to estimate meta-gradients for. */
function probeMeta(): MetaOptimizer {
  const variables: Record<string, tf.Variable> = tf.tidy(() => ({ lr: tf.variable(tf.scalar(0.1)), k: tf.variable(tf.scalar(0.2)) }));
  return {
    type: 'probe',
    config: () => ({ type: 'probe', options: {} }),
    variables,
    getWeights: () => cloneNamed(variables),
    setWeights: (w) => Object.entries(variables).forEach(([n, v]) => v.assign(w[n]!)),
    optimizer: (given?: Readonly<Record<string, tf.Tensor>>): Optimizer => {
      const w = given ?? variables;
      return {
        name: 'probe',
        init: (params) => ({ params: cloneNamed(params), slots: Object.fromEntries(Object.entries(params).map(([n, p]) => [n, tf.zerosLike(p)])), step: 0 }),
        update: (state, grads) => {
          const slots: NamedTensors = {};
          const params: NamedTensors = {};
          for (const [n, p] of Object.entries(state.params)) {
            slots[n] = tf.add(tf.mul((state.slots as NamedTensors)[n]!, 0.5), grads[n]!);
            params[n] = tf.sub(p, tf.mul(w.lr!, tf.add(grads[n]!, tf.mul(w.k!, slots[n]!))));
          }
          return { params, slots, step: state.step + 1 };
        },
      };
    },
    dispose: () => Object.values(variables).forEach((v) => v.dispose()),
  };
}

/**
 * Smoke-tests a meta-gradient estimator (kind `estimator`) against the `MetaGradientEstimator` contract; throws a
 * `ContractError` naming it and the broken rule. On two quadratic tasks and a two-weight learned optimizer, over
 * two truncations: `create` gives a factory of the same type whose estimator has a description; `estimate`
 * returns a finite gradient of φ's shapes for every weight, one finite meta-loss per task, and states whose loss
 * is finite; the same seeds give the same estimates; the live weights are untouched; nothing leaks.
 */
export async function checkEstimator(definition: ComponentDefinition, opts: CheckOptions = {}): Promise<void> {
  await tf.ready();
  const { fail, options, ctx } = prepare('checkEstimator', definition, 'estimator', opts);
  const factory = attempt(fail, 'create', () => definition.create(options, ctx)) as EstimatorFactory;
  if (!factory || typeof factory.create !== 'function') fail('create must return an EstimatorFactory ({ type, create(setup) })');
  if (factory.type !== definition.type) fail(`the factory's type is ${show(factory.type)}, expected "${definition.type}"`);
  // sharded: each task estimated on its own with its index as firstTask (what @l2l/distributed's shards do), the
  // two estimates averaged as the learner averages them.
  const run = async (sharded = false) => {
    const meta = probeMeta();
    const q = testQuadratic({ w: [3, 2], b: [4] });
    const task: Task = {
      config: { family: 'probe', split: 'train', seed: 0 },
      initParams: () => q.init(),
      batch: () => ({}),
      loss: (p) => q.loss(p),
      dispose: () => {},
    };
    const before = snapshotNamed(meta.variables);
    const estimator = attempt(fail, 'factory.create(setup)', () =>
      factory.create({ meta, training: { lossWeights: 'uniform', secondDerivatives: false, tasksPerStep: 2 } }),
    );
    if (typeof estimator.description !== 'string' || !estimator.description) fail('the estimator needs a description (what l2l train prints)');
    const states: TruncationState[] = [];
    const out: number[][] = [];
    try {
      for (let i = 0; i < 2; i++) states.push(attempt(fail, 'init', () => estimator.init(task, task.initParams(i), i)));
      for (let k = 0; k < 2; k++) {
        const { grads, metaLosses } = sharded
          ? await attemptAsync(fail, 'estimate (one task at a time, with firstTask)', async () => {
              const parts: GradientEstimate[] = [];
              for (const [i, s] of states.entries()) parts.push(await estimator.estimate([s], 3, 17 + k, i));
              return averaged(parts);
            })
          : await attemptAsync(fail, 'estimate', () => estimator.estimate(states, 3, 17 + k));
        checkEstimate(fail, meta, grads, metaLosses, states);
        out.push([...metaLosses, ...Object.keys(meta.variables).flatMap((n) => [...grads[n]!.dataSync()])]);
        tf.dispose(Object.values(grads));
      }
      if (!deepEqual(snapshotNamed(meta.variables), before)) fail('estimate changed the live weights: perturbed copies must never touch them');
    } finally {
      states.forEach((s) => s.dispose());
      estimator.dispose();
      q.dispose();
      meta.dispose();
    }
    return out;
  };
  const start = numTensors();
  const first = await run();
  if (numTensors() !== start) fail(`${numTensors() - start} tensor(s) are still allocated after the states and the estimator are disposed`);
  if (!deepEqual(await run(), first)) fail('the same seeds gave different estimates: everything random must come from the seed passed to estimate');
  const sharded = await run(true);
  if (!closeRows(sharded, first, 1e-5)) {
    fail('estimating the tasks one at a time (as shards do, with firstTask) gave other estimates than all at once: randomness drawn per task must be keyed by firstTask + its position in states');
  }
}

/** The mean of per-task estimates, their meta-losses in order. */
function averaged(parts: Array<{ grads: NamedTensors; metaLosses: number[] }>): { grads: NamedTensors; metaLosses: number[] } {
  const grads: NamedTensors = {};
  for (const name of Object.keys(parts[0]!.grads)) grads[name] = tf.tidy(() => tf.div(tf.addN(parts.map((p) => p.grads[name]!)), parts.length));
  parts.forEach((p) => tf.dispose(Object.values(p.grads)));
  return { grads, metaLosses: parts.flatMap((p) => p.metaLosses) };
}

function closeRows(a: number[][], b: number[][], rel: number): boolean {
  return a.length === b.length && a.every((row, i) => row.length === b[i]!.length && row.every((x, j) => Math.abs(x - b[i]![j]!) <= rel * Math.max(1, Math.abs(b[i]![j]!))));
}

function checkEstimate(fail: Fail, meta: MetaOptimizer, grads: NamedTensors, metaLosses: number[], states: TruncationState[]): void {
  for (const [name, v] of Object.entries(meta.variables)) {
    const g = grads[name];
    if (!g) fail(`estimate gave no gradient for weight "${name}"`);
    if (g.shape.join() !== v.shape.join()) fail(`the gradient of "${name}" has shape [${g.shape.join(', ')}], expected [${v.shape.join(', ')}]`);
    if (![...g.dataSync()].every(Number.isFinite)) fail(`the gradient of "${name}" is not finite`);
  }
  if (!Array.isArray(metaLosses) || metaLosses.length !== states.length || !metaLosses.every(Number.isFinite)) {
    fail(`estimate must give one finite meta-loss per task (${states.length}), got ${show(metaLosses)}`);
  }
  if (!states.every((s) => Number.isFinite(s.loss))) fail('a state reports a loss that is not finite after a truncation on a quadratic');
}
