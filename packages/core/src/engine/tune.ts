import type { Optimizer } from '../contracts/optimizer';
import type { TaskFamily } from '../contracts/task';
import { UserError } from '../errors';
import { deriveSeed } from '../random';
import type { OptimizerSpec, RunOutcome, RunRequest, RunSource } from '../contracts/runs';
import { runRequestSteps } from './evaluate';
import { awaitStep, runSteps, type Steps } from './steps';

export interface TuningOptions {
  learningRates: number[];
  tasks: number;
  steps: number;
  seed: number;
  /** Run the grid there (all at once), `spec(learningRate)` rebuilding the optimizer: the same runs, elsewhere. */
  remote?: { source: RunSource; spec: (learningRate: number) => OptimizerSpec };
}

export interface TuningResult {
  best: number;
  /** Mean final loss on the training tasks per learning rate (Infinity when any run diverged). */
  grid: Array<{ learningRate: number; meanFinalLoss: number }>;
  /** The best learning rate is the grid's smallest or largest: the grid should be extended that way. */
  atEdge: 'low' | 'high' | null;
}

/**
 * Grid search of a learning rate on training tasks, as the paper tuned its baselines: every grid point runs
 * on the same `tasks` training tasks, seeds and step count; the lowest mean final loss wins.
 */
export function tuneLearningRate(family: TaskFamily, make: (learningRate: number) => Optimizer, options: TuningOptions): TuningResult {
  return runSteps(tuneLearningRateSteps(family, make, options));
}

/** `tuneLearningRate`, yielding after each run (engine/steps.ts). */
export function* tuneLearningRateSteps(family: TaskFamily, make: (learningRate: number) => Optimizer, options: TuningOptions): Steps<TuningResult> {
  if (options.learningRates.length === 0) throw new UserError('tuning: learningRates is empty');
  const grid: TuningResult['grid'] = [];
  const request = (i: number): RunRequest => ({
    split: 'train',
    taskSeed: deriveSeed(options.seed, 'tune-task', i),
    initSeed: deriveSeed(options.seed, 'tune-init', i),
    batchSeed: deriveSeed(options.seed, 'tune-batch', i),
    steps: options.steps,
  });
  const finalOf = (r: RunOutcome) => {
    const final = r.losses[r.losses.length - 1]!;
    return Number.isFinite(final) ? final : Infinity;
  };
  if (options.remote) {
    // Every grid point on every task at once; a diverged run makes its point's mean Infinity, as below.
    const { source, spec } = options.remote;
    const runs = options.learningRates.flatMap((lr) => Array.from({ length: options.tasks }, (_, i) => ({ optimizer: spec(lr), request: request(i) })));
    const outcomes = yield* awaitStep(source.runAll(runs));
    options.learningRates.forEach((learningRate, k) => {
      let sum = 0;
      for (let i = 0; i < options.tasks; i++) sum += finalOf(outcomes[k * options.tasks + i]!);
      grid.push({ learningRate, meanFinalLoss: sum / options.tasks });
    });
  } else {
    for (const learningRate of options.learningRates) {
      const optimizer = make(learningRate);
      let sum = 0;
      // Once a run diverged the point's mean is Infinity: its remaining tasks are skipped.
      for (let i = 0; i < options.tasks && Number.isFinite(sum); i++) {
        sum += finalOf(yield* runRequestSteps(family, optimizer, request(i)));
        yield;
      }
      grid.push({ learningRate, meanFinalLoss: sum / options.tasks });
    }
  }
  const best = grid.reduce((a, b) => (b.meanFinalLoss < a.meanFinalLoss ? b : a));
  const sorted = grid.map((g) => g.learningRate).sort((a, b) => a - b);
  const atEdge = sorted.length < 2 ? null : best.learningRate === sorted[0] ? 'low' : best.learningRate === sorted[sorted.length - 1] ? 'high' : null;
  return { best: best.learningRate, grid, atEdge };
}
