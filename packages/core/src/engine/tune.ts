import type { Optimizer } from '../contracts/optimizer';
import type { TaskFamily } from '../contracts/task';
import { UserError } from '../errors';
import { deriveSeed } from '../random';
import { runOptimizer } from './run';
import { runSteps, type Steps } from './steps';

export interface TuningOptions {
  learningRates: number[];
  tasks: number;
  steps: number;
  seed: number;
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
  for (const learningRate of options.learningRates) {
    const optimizer = make(learningRate);
    let sum = 0;
    for (let i = 0; i < options.tasks && Number.isFinite(sum); i++) {
      const task = family.build(family.sample(deriveSeed(options.seed, 'tune-task', i), 'train'));
      try {
        const { losses } = runOptimizer(task, optimizer, {
          steps: options.steps,
          initSeed: deriveSeed(options.seed, 'tune-init', i),
          batchSeed: deriveSeed(options.seed, 'tune-batch', i),
        });
        const final = losses[losses.length - 1]!;
        sum += Number.isFinite(final) ? final : Infinity;
      } finally {
        task.dispose();
      }
      yield;
    }
    grid.push({ learningRate, meanFinalLoss: sum / options.tasks });
  }
  const best = grid.reduce((a, b) => (b.meanFinalLoss < a.meanFinalLoss ? b : a));
  const sorted = grid.map((g) => g.learningRate).sort((a, b) => a - b);
  const atEdge = sorted.length < 2 ? null : best.learningRate === sorted[0] ? 'low' : best.learningRate === sorted[sorted.length - 1] ? 'high' : null;
  return { best: best.learningRate, grid, atEdge };
}
