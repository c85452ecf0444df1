import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentConfig } from '../config/experiment';
import type { ComponentConfig, JsonObject } from '../contracts/json';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { OptimizerSpec, RunSource } from '../contracts/runs';
import { disposeTree, type NamedTensors } from '../tensor-tree';
import { checkParameterGroups } from '../engine/per-group';
import type { TaskFamily } from '../contracts/task';
import { disposeSnapshot, loadSnapshotWeights, readSnapshot, toCsv, writeFileAtomic } from '../engine/checkpoint';
import { evaluateOptimizerSteps, lastSteps, type OptimizerResult, type Stats } from '../engine/evaluate';
import { runSteps, runStepsAsync, type Steps } from '../engine/steps';
import { tuneLearningRateSteps, type TuningResult } from '../engine/tune';
import { deriveSeed } from '../random';
import type { ComponentRegistry } from '../registry/registry';
import { preflightBuilt } from './measure';
import { UserError } from '../errors';
import { compareOptimizers, comparisonSentence, formatInterval, measureLabel, RANK_MEASURE, type Measure, type PairedComparison } from './compare';

export interface EvaluationResults {
  experiment?: string;
  optimizee: ComponentConfig;
  steps: number;
  tasks: number;
  seed: number;
  /** "validation" when the tasks are validation-split ones (`l2l eval --split validation`); absent: test-split. */
  split?: 'validation';
  backend?: string;
  /** The learned optimizers first (in checkpoint order), then the baselines in config order. */
  optimizers: OptimizerResult[];
  /** Learning-rate grid per tuned baseline, keyed by its position in evaluation.baselines. */
  tuning: Array<{ baseline: ComponentConfig; result: TuningResult }>;
  /** What tables rank by and verdicts are first given for (absent in results from before paired comparisons). */
  rankBy?: Measure;
  /** Every learned optimizer against every tuned baseline, paired per task (see `compareOptimizers`). */
  comparisons?: PairedComparison[];
}

/** The results with their paired comparisons (re)computed from the per-task values. */
export function withComparisons(results: EvaluationResults): EvaluationResults {
  return { ...results, rankBy: RANK_MEASURE, comparisons: compareOptimizers(results.optimizers) };
}

export interface EvaluateRunOptions {
  /** A checkpoint (run directory or snapshot) of the learned optimizer; none evaluates the baselines alone. */
  checkpoint?: string;
  /** Several checkpoints (learned optimizers compared with each other), evaluated after `checkpoint`. */
  checkpoints?: readonly string[];
  /**
   * How the user named each checkpoint (`checkpoint` first, then `checkpoints`: the paths or pretrained names as
   * typed). A learned optimizer's results are named by its type, or `type (label)` when two checkpoints have the
   * same type, so that their rows and comparisons can be told apart; default label: the checkpoint's path.
   */
  labels?: readonly string[];
  baseDir: string;
  /** Override the experiment's evaluation step count (e.g. 10× the training horizon). */
  steps?: number;
  tasks?: number;
  /**
   * The split of the evaluation tasks: test (default) for final results; validation for choosing settings (which
   * checkpoint, which config) without looking at test-split tasks. With validation the tasks' held-out metrics are
   * left out: for image families they score the official test images, which no choice may see.
   */
  split?: 'test' | 'validation';
  /**
   * Threads of a learned optimizer's fused kernel (the same losses as one thread); default: training.workers
   * where it is above 0, else 1.
   */
  threads?: number;
  /** Progress: which optimizer, and how far. */
  onProgress?: (what: string, done: number, total: number) => void;
  /** What pre-flight messages start with (the config file); default "experiment". */
  where?: string;
  /**
   * Where the runs happen; default: here, one after another. A run source (@l2l/distributed) runs each batch
   * (a tuning grid, an optimizer's evaluation tasks) at once elsewhere: needs `evaluateExperimentAsync`.
   */
  runs?: RunSource;
}

/** The split of an evaluation's runs, and whether they collect the tasks' held-out metrics (test split only). */
type SplitOptions = { split: 'test' | 'validation'; metrics: boolean };

function splitOptions(options: EvaluateRunOptions): SplitOptions {
  const split = options.split ?? 'test';
  if (split !== 'test' && split !== 'validation') throw new UserError(`evaluation split must be "test" or "validation", got ${JSON.stringify(split)}`);
  return { split, metrics: split === 'test' };
}

/** "50 held-out (test-split) tasks", or the validation split's, with what that split is for. */
export function tasksPhrase(results: EvaluationResults): string {
  return results.split === 'validation'
    ? `${results.tasks} validation-split tasks (for choosing settings; no test-split task and no test metric)`
    : `${results.tasks} held-out (test-split) tasks`;
}

function* evaluateBaselines(
  experiment: ExperimentConfig,
  registry: ComponentRegistry,
  family: TaskFamily,
  steps: number,
  tasks: number,
  options: EvaluateRunOptions,
  split: SplitOptions,
): Steps<{ results: OptimizerResult[]; tuning: EvaluationResults['tuning'] }> {
  const { evaluation } = experiment;
  const results: OptimizerResult[] = [];
  const tuning: EvaluationResults['tuning'] = [];
  for (const [i, baseline] of evaluation.baselines.entries()) {
    const label = `evaluation.baselines[${i}]`;
    const base = registry.resolveOptions('optimizer', baseline, '', label);
    const config = (learningRate: number) => ({ type: baseline.type, options: { ...(base as JsonObject), learningRate } });
    const make = (learningRate: number) => registry.create('optimizer', config(learningRate), { seed: 0, baseDir: options.baseDir }, '', label);
    const spec = (learningRate: number): OptimizerSpec => ({ kind: 'optimizer', name: baseline.type, config: config(learningRate) });
    const source = options.runs;
    let learningRate = base.learningRate as number;
    if (evaluation.tuning.learningRates.length > 0) {
      options.onProgress?.(`tuning ${baseline.type}`, 0, 1);
      const result = yield* tuneLearningRateSteps(family, make, {
        learningRates: evaluation.tuning.learningRates,
        tasks: evaluation.tuning.tasks,
        steps: evaluation.tuning.steps ?? steps,
        seed: deriveSeed(experiment.seed, 'tuning'),
        ...(source && { remote: { source, spec } }),
      });
      tuning.push({ baseline, result });
      learningRate = result.best;
    }
    const r = yield* evaluateOptimizerSteps(family, make(learningRate), baseline.type, {
      steps,
      tasks,
      seed: deriveSeed(experiment.seed, 'evaluation'),
      ...split,
      onTask: (done, total) => options.onProgress?.(baseline.type, done, total),
      ...(source && { remote: { source, spec: spec(learningRate) } }),
    });
    results.push({ ...r, learningRate });
  }
  return { results, tuning };
}

/**
 * Evaluates the learned optimizer of each checkpoint and the experiment's baselines (learning rates tuned by
 * grid on training tasks) on the same held-out tasks, seeds and step count.
 */
export function evaluateExperiment(experiment: ExperimentConfig, registry: ComponentRegistry, options: EvaluateRunOptions): EvaluationResults {
  return runSteps(evaluateExperimentSteps(experiment, registry, options));
}

/**
 * `evaluateExperiment` giving the event loop a turn after every run (engine/steps.ts), so that a signal stops it
 * within one run: what the CLI uses.
 */
export function evaluateExperimentAsync(experiment: ExperimentConfig, registry: ComponentRegistry, options: EvaluateRunOptions): Promise<EvaluationResults> {
  return runStepsAsync(evaluateExperimentSteps(experiment, registry, options));
}

function* evaluateExperimentSteps(experiment: ExperimentConfig, registry: ComponentRegistry, options: EvaluateRunOptions): Steps<EvaluationResults> {
  // Checked before anything is built; every run of the evaluation then uses it.
  const split = splitOptions(options);
  const steps = options.steps ?? experiment.evaluation.steps;
  const tasks = options.tasks ?? experiment.evaluation.tasks;
  const family = registry.create('optimizee', experiment.optimizee, { seed: deriveSeed(experiment.seed, 'optimizee'), baseDir: options.baseDir });
  try {
    preflightBuilt(experiment, registry, options.where ?? 'experiment', 'eval', family);
    const optimizers: OptimizerResult[] = [];
    const checkpoints = [...(options.checkpoint ? [options.checkpoint] : []), ...(options.checkpoints ?? [])];
    for (const checkpoint of checkpoints) {
      const snapshot = readSnapshot(checkpoint);
      let weights: NamedTensors | undefined;
      let meta: MetaOptimizer;
      try {
        meta = registry.create('meta-optimizer', snapshot.metaOptimizer, { seed: 0, baseDir: options.baseDir }, path.join(snapshot.dir ?? checkpoint, 'meta-optimizer.json'));
      } catch (e) {
        disposeSnapshot(snapshot);
        throw e;
      }
      try {
        checkParameterGroups(meta, family, `${path.join(snapshot.dir ?? checkpoint, 'meta-optimizer.json')}: metaOptimizer`);
        loadSnapshotWeights(meta, snapshot);
        // Remote runs rebuild the learned optimizer from its config and φ.
        weights = options.runs ? meta.getWeights() : undefined;
        const remote = options.runs && weights ? { source: options.runs, spec: { kind: 'learned' as const, name: meta.type, metaOptimizer: meta.config(), weights } } : undefined;
        optimizers.push(
          yield* evaluateOptimizerSteps(family, meta.optimizer(), 'learned', {
            steps,
            tasks,
            seed: deriveSeed(experiment.seed, 'evaluation'),
            ...split,
            threads: options.threads ?? Math.max(1, experiment.training.workers ?? 0),
            onTask: (done, total) => options.onProgress?.(meta.type, done, total),
            ...(remote && { remote }),
          }),
        );
      } finally {
        disposeSnapshot(snapshot);
        meta.dispose();
        if (weights) disposeTree(weights);
      }
    }
    const types = optimizers.map((o) => o.name);
    optimizers.forEach((o, i) => {
      if (types.indexOf(o.name) !== types.lastIndexOf(o.name)) o.name = `${o.name} (${options.labels?.[i] ?? checkpoints[i]})`;
    });
    const { results, tuning } = yield* evaluateBaselines(experiment, registry, family, steps, tasks, options, split);
    optimizers.push(...results);
    return withComparisons({
      experiment: experiment.name,
      optimizee: experiment.optimizee,
      steps,
      tasks,
      seed: experiment.seed,
      ...(options.split === 'validation' && { split: 'validation' as const }),
      optimizers,
      tuning,
    });
  } finally {
    family.dispose?.();
  }
}

const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toPrecision(4)) : String(x));

const pm = (st: Stats | undefined) => (st ? `${fmt(st.mean)} ± ${fmt(st.std)}` : '—');
const rankValue = (o: OptimizerResult) => (o.finalMean && Number.isFinite(o.finalMean.mean) ? o.finalMean.mean : Infinity);

/**
 * The results as a markdown table, one row per optimizer, ranked by the final loss averaged over the last 10 %
 * of steps (mean ± std over the held-out tasks); beside it the one-minibatch loss at the last step, the
 * task's full loss (all its data) where it has one, and its metrics.
 */
export function resultsTable(results: EvaluationResults): string {
  const metricNames = [...new Set(results.optimizers.flatMap((o) => Object.keys(o.metrics ?? {})))];
  const hasFull = results.optimizers.some((o) => o.fullLoss);
  const head = [
    'optimizer',
    'learning rate',
    `${measureLabel('finalMean', results.steps)} (ranked by), mean ± std`,
    `${measureLabel('final', results.steps)}, mean ± std`,
    ...(hasFull ? [`${measureLabel('fullLoss', results.steps)}, mean ± std`] : []),
    ...metricNames.map((m) => `${m}, mean ± std`),
    'diverged',
  ];
  const rows = [...results.optimizers]
    .sort((a, b) => rankValue(a) - rankValue(b))
    .map((o) => [
      o.kind === 'learned' ? `**${o.name}** (learned)` : o.kind,
      o.learningRate === undefined ? '—' : fmt(o.learningRate),
      pm(o.finalMean),
      pm(o.final),
      ...(hasFull ? [pm(o.fullLoss)] : []),
      ...metricNames.map((m) => pm(o.metrics?.[m])),
      `${o.diverged}/${o.tasks}`,
    ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The paired comparisons of the results, always recomputed from the per-task values (a stored `comparisons`
 * may be stale: results assembled from separate runs, or learned optimizers renamed).
 */
export function comparisonsOf(results: EvaluationResults): PairedComparison[] {
  return compareOptimizers(results.optimizers);
}

/**
 * Every learned optimizer against every tuned baseline as a markdown table: per measure the mean per-task
 * difference (learned − baseline), its 95 % Student-t interval, the tasks won, and the verdict ("tie" whenever
 * the interval includes zero). Empty when there is nothing to compare.
 */
export function comparisonTable(results: EvaluationResults): string {
  const cs = comparisonsOf(results);
  if (!cs.length) return '';
  const head = ['learned', 'tuned baseline', 'measure', 'mean difference (learned − baseline)', '95 % CI', 'tasks won by learned', 'verdict'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = cs.map((c) => [
    c.learned,
    c.baseline,
    measureLabel(c.measure, results.steps) + (c.measure === RANK_MEASURE ? ' (ranked by)' : ''),
    fmt(c.meanDifference),
    formatInterval(c),
    `${c.won}/${c.tasks}${c.leftOut ? ` (${c.leftOut} left out)` : ''}`,
    c.verdict === 'wins' ? '**wins**' : c.verdict === 'loses' ? '**loses**' : 'tie',
  ]);
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

/** Generated sentences for the ranking measure and the test metrics: "wins"/"loses" only when the interval excludes zero. */
export function comparisonSentences(results: EvaluationResults, measures: readonly Measure[] = [RANK_MEASURE, 'metrics.testLoss', 'metrics.testAccuracy']): string[] {
  return comparisonsOf(results)
    .filter((c) => measures.includes(c.measure))
    .map((c) => comparisonSentence(c, results.steps));
}

/** How the results were measured, in one paragraph (what the columns mean and what is compared). */
export function resultsLegend(results: EvaluationResults): string {
  const { from, to } = lastSteps(results.steps);
  return (
    `Rows are ranked by the final loss averaged over steps ${from}–${to} (the last 10 % of steps) on each task, then over the tasks; ` +
    `"${measureLabel('final', results.steps)}" is the loss on the one minibatch of the last step` +
    (results.optimizers.some((o) => o.fullLoss) ? `; "${measureLabel('fullLoss', results.steps)}" is the loss of the final parameters on all the data the task trains on` : '') +
    (results.optimizers.some((o) => o.metrics?.testLoss) ? '; testLoss and testAccuracy are measured on data no task trains on (for image families: the official test set)' : '') +
    '. Comparisons pair the same held-out task across optimizers: mean per-task difference with its 95 % Student-t confidence interval; ' +
    '"wins" or "loses" only when the interval excludes zero, otherwise "tie".'
  );
}

/** Writes results.json (with per-task values and paired comparisons), curves.csv (step, optimizer, mean, std) and results.md into `outDir`. */
export function writeEvaluation(outDir: string, results: EvaluationResults): void {
  const full = withComparisons(results);
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'results.json'), JSON.stringify(full, null, 2) + '\n');
  const rows = full.optimizers.flatMap((o) => o.curve.mean.map((m, step) => ({ optimizer: o.name, step, mean: m, std: o.curve.std[step]! })));
  writeFileAtomic(path.join(outDir, 'curves.csv'), toCsv(rows));
  const title = `# Evaluation${full.experiment ? `: ${full.experiment}` : ''}\n\n${tasksPhrase(full)} of \`${full.optimizee.type}\`, ${full.steps} steps, seed ${full.seed}${full.backend ? `, backend ${full.backend}` : ''}.\n\n`;
  const compared = comparisonTable(full);
  const sentences = comparisonSentences(full);
  writeFileAtomic(
    path.join(outDir, 'results.md'),
    title + resultsTable(full) + '\n' + resultsLegend(full) + '\n' + (compared ? `\n## Learned vs tuned baselines\n\n${compared}\n${sentences.map((x) => `- ${x}`).join('\n')}\n` : ''),
  );
}
