import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentConfig } from '../config/experiment';
import type { ComponentConfig, JsonObject } from '../contracts/json';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { TaskFamily } from '../contracts/task';
import { disposeSnapshot, loadSnapshotWeights, readSnapshot, toCsv, writeFileAtomic } from '../engine/checkpoint';
import { evaluateOptimizer, type OptimizerResult } from '../engine/evaluate';
import { tuneLearningRate, type TuningResult } from '../engine/tune';
import { deriveSeed } from '../random';
import type { ComponentRegistry } from '../registry/registry';

export interface EvaluationResults {
  experiment?: string;
  optimizee: ComponentConfig;
  steps: number;
  tasks: number;
  seed: number;
  backend?: string;
  /** The learned optimizers first (in checkpoint order), then the baselines in config order. */
  optimizers: OptimizerResult[];
  /** Learning-rate grid per tuned baseline, keyed by its position in evaluation.baselines. */
  tuning: Array<{ baseline: ComponentConfig; result: TuningResult }>;
}

export interface EvaluateRunOptions {
  /** A checkpoint (run directory or snapshot) of the learned optimizer; none evaluates the baselines alone. */
  checkpoint?: string;
  /** Several checkpoints (learned optimizers compared with each other), evaluated after `checkpoint`. */
  checkpoints?: readonly string[];
  baseDir: string;
  /** Override the experiment's evaluation step count (e.g. 10× the training horizon). */
  steps?: number;
  tasks?: number;
  /** Progress: which optimizer, and how far. */
  onProgress?: (what: string, done: number, total: number) => void;
}

function evaluateBaselines(experiment: ExperimentConfig, registry: ComponentRegistry, family: TaskFamily, steps: number, tasks: number, options: EvaluateRunOptions) {
  const { evaluation } = experiment;
  const results: OptimizerResult[] = [];
  const tuning: EvaluationResults['tuning'] = [];
  evaluation.baselines.forEach((baseline, i) => {
    const label = `evaluation.baselines[${i}]`;
    const base = registry.resolveOptions('optimizer', baseline, '', label);
    const make = (learningRate: number) =>
      registry.create('optimizer', { type: baseline.type, options: { ...(base as JsonObject), learningRate } }, { seed: 0, baseDir: options.baseDir }, '', label);
    let learningRate = base.learningRate as number;
    if (evaluation.tuning.learningRates.length > 0) {
      options.onProgress?.(`tuning ${baseline.type}`, 0, 1);
      const result = tuneLearningRate(family, make, {
        learningRates: evaluation.tuning.learningRates,
        tasks: evaluation.tuning.tasks,
        steps: evaluation.tuning.steps ?? steps,
        seed: deriveSeed(experiment.seed, 'tuning'),
      });
      tuning.push({ baseline, result });
      learningRate = result.best;
    }
    const r = evaluateOptimizer(family, make(learningRate), baseline.type, {
      steps,
      tasks,
      seed: deriveSeed(experiment.seed, 'evaluation'),
      metrics: true,
      onTask: (done, total) => options.onProgress?.(baseline.type, done, total),
    });
    results.push({ ...r, learningRate });
  });
  return { results, tuning };
}

/**
 * Evaluates the learned optimizer of each checkpoint and the experiment's baselines (learning rates tuned by
 * grid on training tasks) on the same held-out tasks, seeds and step count.
 */
export function evaluateExperiment(experiment: ExperimentConfig, registry: ComponentRegistry, options: EvaluateRunOptions): EvaluationResults {
  const steps = options.steps ?? experiment.evaluation.steps;
  const tasks = options.tasks ?? experiment.evaluation.tasks;
  const family = registry.create('optimizee', experiment.optimizee, { seed: deriveSeed(experiment.seed, 'optimizee'), baseDir: options.baseDir });
  try {
    const optimizers: OptimizerResult[] = [];
    const checkpoints = [...(options.checkpoint ? [options.checkpoint] : []), ...(options.checkpoints ?? [])];
    for (const checkpoint of checkpoints) {
      const snapshot = readSnapshot(checkpoint);
      let meta: MetaOptimizer;
      try {
        meta = registry.create('meta-optimizer', snapshot.metaOptimizer, { seed: 0, baseDir: options.baseDir }, path.join(snapshot.dir ?? checkpoint, 'meta-optimizer.json'));
      } catch (e) {
        disposeSnapshot(snapshot);
        throw e;
      }
      try {
        loadSnapshotWeights(meta, snapshot);
        optimizers.push(
          evaluateOptimizer(family, meta.optimizer(), 'learned', {
            steps,
            tasks,
            seed: deriveSeed(experiment.seed, 'evaluation'),
            metrics: true,
            onTask: (done, total) => options.onProgress?.(meta.type, done, total),
          }),
        );
      } finally {
        disposeSnapshot(snapshot);
        meta.dispose();
      }
    }
    const { results, tuning } = evaluateBaselines(experiment, registry, family, steps, tasks, options);
    optimizers.push(...results);
    return { experiment: experiment.name, optimizee: experiment.optimizee, steps, tasks, seed: experiment.seed, optimizers, tuning };
  } finally {
    family.dispose?.();
  }
}

const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toPrecision(4)) : String(x));

/** The results as a markdown table: one row per optimizer, final loss mean ± std over the held-out tasks. */
export function resultsTable(results: EvaluationResults): string {
  const metricNames = [...new Set(results.optimizers.flatMap((o) => Object.keys(o.metrics ?? {})))];
  const head = ['optimizer', 'learning rate', `final loss (step ${results.steps}), mean ± std`, ...metricNames.map((m) => `${m}, mean ± std`), 'diverged'];
  const rows = [...results.optimizers]
    .sort((a, b) => (Number.isNaN(a.final.mean) ? 1 : Number.isNaN(b.final.mean) ? -1 : a.final.mean - b.final.mean))
    .map((o) => [
      o.kind === 'learned' ? `**${o.name}** (learned)` : o.kind,
      o.learningRate === undefined ? '—' : fmt(o.learningRate),
      `${fmt(o.final.mean)} ± ${fmt(o.final.std)}`,
      ...metricNames.map((m) => (o.metrics?.[m] ? `${fmt(o.metrics[m]!.mean)} ± ${fmt(o.metrics[m]!.std)}` : '—')),
      `${o.diverged}/${o.tasks}`,
    ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

/** Writes results.json, curves.csv (step, optimizer, mean, std) and results.md into `outDir`. */
export function writeEvaluation(outDir: string, results: EvaluationResults): void {
  fs.mkdirSync(outDir, { recursive: true });
  writeFileAtomic(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  const rows = results.optimizers.flatMap((o) => o.curve.mean.map((m, step) => ({ optimizer: o.name, step, mean: m, std: o.curve.std[step]! })));
  writeFileAtomic(path.join(outDir, 'curves.csv'), toCsv(rows));
  const title = `# Evaluation${results.experiment ? `: ${results.experiment}` : ''}\n\n${results.tasks} held-out tasks of \`${results.optimizee.type}\`, ${results.steps} steps, seed ${results.seed}${results.backend ? `, backend ${results.backend}` : ''}.\n\n`;
  writeFileAtomic(path.join(outDir, 'results.md'), title + resultsTable(results));
}
