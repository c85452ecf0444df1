import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseExperiment, readJsonFile, resolveExperiment, type ExperimentConfig } from '../config/experiment';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { PopulationSource } from '../contracts/population';
import type { TaskFamily } from '../contracts/task';
import { UserError } from '../errors';
import { deriveSeed } from '../random';
import type { ComponentRegistry } from '../registry/registry';
import { disposeQuietly, disposeSnapshot, hasSnapshot, loadSnapshotWeights, readSnapshot, removeStaleTemporaries, toCsv, writeExperiment, writeFileAtomic, writeSnapshot } from '../engine/checkpoint';
import { readable } from '../engine/steps';
import { MetaTrainer, type EpochReport, type TrainerEvents, type TrainerParts } from '../engine/meta-trainer';
import type { MetaOptimizerSource } from '../engine/parallel/chunked-meta-gradient';
import { preflightBuilt } from './measure';
import { checkParameterGroups } from '../engine/per-group';

export interface TrainRunOptions {
  /** Checkpoint directory. */
  outDir: string;
  /** Continue from `outDir/latest` instead of starting afresh. */
  resume?: boolean;
  /** Directory relative paths in component options resolve from (the config file's). */
  baseDir: string;
  events?: TrainerEvents & {
    onStart?(info: { startEpoch: number; epochs: number; unrollsPerEpoch: number; metaGradient: string; schedule?: string }): void;
  };
  /**
   * How worker threads rebuild the meta-optimizer when training.workers > 0; default: the registry's `rebuild`
   * (set by @l2l/cli's workspaces), with `baseDir`.
   */
  workerSource?: MetaOptimizerSource;
  /** The experiment file: what errors and pre-flight messages name (default "experiment"). */
  where?: string;
  /** Where episodes' tasks live (MetaTrainer's parts.population); default: in this process. */
  population?: PopulationSource;
}

export interface TrainRunResult {
  outDir: string;
  epochs: number;
  bestEpoch: number | null;
  bestValidation: number | null;
  skipped: number;
  reports: EpochReport[];
}

type LogRow = Record<string, number | string | boolean | null>;

function logRow(r: EpochReport): LogRow {
  return {
    epoch: r.epoch,
    meta_loss: r.metaLoss,
    final_loss: r.finalLoss,
    validation_loss: r.validationLoss ?? null,
    best: r.best ?? null,
    skipped: r.skipped,
    seconds: Number(r.seconds.toFixed(3)),
    // Only with a schedule: the logs of runs without one keep their columns.
    ...(r.learningRateFactor !== undefined && { learning_rate_factor: r.learningRateFactor }),
  };
}

function readLog(file: string): LogRow[] {
  if (!fs.existsSync(file)) return [];
  const [head, ...lines] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const keys = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i]!, v === '' ? null : Number.isNaN(Number(v)) ? v : Number(v)])));
}

/**
 * What may differ between a checkpoint's experiment and the config it is resumed with: the epochs, and the worker
 * threads (the same meta-gradient; checkpoints are taken between epochs, where episodes start afresh).
 */
function comparable(e: ExperimentConfig): unknown {
  return { ...e, name: undefined, description: undefined, training: { ...e.training, epochs: undefined, workers: undefined, kernel: undefined } };
}

/** The paths (`training.unroll`, `optimizee.options.dims`) where two JSON values differ, key order aside. */
export function jsonDifferences(a: unknown, b: unknown, at = ''): string[] {
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== undefined || b[k] !== undefined);
    return keys.flatMap((k) => jsonDifferences(a[k], b[k], at ? `${at}.${k}` : k));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) return a.flatMap((x, i) => jsonDifferences(x, b[i], `${at}[${i}]`));
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [at || '(the whole config)'];
}

/** Builds the experiment's meta-optimizer (seeded from the experiment's seed). */
export function createMetaOptimizer(experiment: ExperimentConfig, registry: ComponentRegistry, baseDir: string): MetaOptimizer {
  if (!experiment.metaOptimizer) throw new UserError('the experiment has no metaOptimizer to train');
  return registry.create('meta-optimizer', experiment.metaOptimizer, { seed: deriveSeed(experiment.seed, 'meta-init'), baseDir }, '', 'metaOptimizer');
}

/**
 * The run's estimator, outer optimizer and learning-rate schedule from the registry (`training.estimator`,
 * `training.outerOptimizer`, `training.learningRateSchedule`); absent ones are left to the engine's defaults (tbptt,
 * Adam, constant).
 */
export function trainerParts(experiment: ExperimentConfig, registry: ComponentRegistry, baseDir: string): TrainerParts {
  const { estimator, outerOptimizer, learningRateSchedule } = experiment.training;
  const ctx = { seed: deriveSeed(experiment.seed, 'training-components'), baseDir };
  return {
    ...(estimator && { estimator: registry.create('estimator', estimator, ctx, '', 'training.estimator') }),
    ...(outerOptimizer && { outerOptimizer: registry.create('optimizer', outerOptimizer, ctx, '', 'training.outerOptimizer') }),
    ...(learningRateSchedule && { learningRateSchedule: registry.create('schedule', learningRateSchedule, ctx, '', 'training.learningRateSchedule') }),
  };
}

/** What `createTrainer` builds: the trainer and the parts it was built from (freed by `dispose`). */
export interface BuiltTrainer {
  readonly trainer: MetaTrainer;
  readonly meta: MetaOptimizer;
  readonly family: TaskFamily;
  dispose(): void;
}

/**
 * An experiment's optimizee family, meta-optimizer and MetaTrainer, checked (parameter groups, pre-flight) as
 * `l2l train` checks them: what `trainExperiment` trains and what a distributed worker (@l2l/distributed)
 * rebuilds to hold its share of each episode.
 */
export function createTrainer(
  experiment: ExperimentConfig,
  registry: ComponentRegistry,
  options: Pick<TrainRunOptions, 'baseDir' | 'events' | 'workerSource' | 'where' | 'population'>,
): BuiltTrainer {
  const family = registry.create('optimizee', experiment.optimizee, { seed: deriveSeed(experiment.seed, 'optimizee'), baseDir: options.baseDir });
  const meta = createMetaOptimizer(experiment, registry, options.baseDir);
  const workerSource = options.workerSource ?? (registry.rebuild && { ...registry.rebuild, baseDir: options.baseDir });
  let trainer: MetaTrainer;
  try {
    checkParameterGroups(meta, family, `${options.where ? `${options.where}: ` : ''}metaOptimizer`);
    preflightBuilt(experiment, registry, options.where ?? 'experiment', 'train', family, meta);
    const parts = { ...trainerParts(experiment, registry, options.baseDir), ...(options.population && { population: options.population }) };
    trainer = new MetaTrainer(family, meta, experiment.training, experiment.seed, options.events, workerSource, parts);
  } catch (e) {
    disposeQuietly(() => meta.dispose(), () => family.dispose?.());
    throw e;
  }
  return { trainer, meta, family, dispose: () => disposeQuietly(() => trainer.dispose(), () => meta.dispose(), () => family.dispose?.()) };
}

/**
 * Meta-trains an experiment's meta-optimizer on its optimizee family and keeps a checkpoint directory:
 * experiment.json, log.csv, latest/ after every epoch and best/ at every validation improvement.
 */
export async function trainExperiment(experiment: ExperimentConfig, registry: ComponentRegistry, options: TrainRunOptions): Promise<TrainRunResult> {
  const { outDir } = options;
  const logFile = path.join(outDir, 'log.csv');
  const built = createTrainer(experiment, registry, options);
  const { trainer, meta } = built;
  let rows: LogRow[] = [];
  try {
    removeStaleTemporaries(outDir);
    const resumable = hasSnapshot(outDir);
    if (options.resume && (resumable || fs.existsSync(path.join(outDir, 'experiment.json')))) {
      const saved = path.join(outDir, 'experiment.json');
      if (!fs.existsSync(saved)) throw new UserError(`${outDir}: nothing to resume (no experiment.json); run without --resume`);
      // Re-resolved, so options added (with defaults) since the checkpoint was written do not count as changes.
      const previous = resolveExperiment(parseExperiment(readJsonFile(saved), saved), registry, saved);
      const changed = jsonDifferences(comparable(previous), comparable(experiment));
      if (changed.length) {
        throw new UserError(`${saved}: the config differs from the checkpoint's experiment in ${changed.join(', ')} (only training.epochs, training.workers and training.kernel may change on --resume)`);
      }
      // A run killed before its first snapshot has nothing to resume: it starts over.
      if (resumable) {
        const snapshot = readSnapshot(outDir, 'latest');
        try {
          if (!snapshot.trainer) throw new UserError(`${outDir}/latest: no trainer state to resume from (trainer.json is missing)`);
          loadSnapshotWeights(meta, snapshot, experiment);
          trainer.restore(snapshot.trainer, snapshot.adam ?? {});
        } finally {
          disposeSnapshot(snapshot);
        }
        rows = readLog(logFile).filter((r) => Number(r.epoch) <= trainer.state.epoch);
      }
    } else if (options.resume) {
      throw new UserError(`${outDir}: nothing to resume (no experiment.json); run without --resume`);
    } else if (resumable) {
      throw new UserError(`${outDir} already holds a training run; pass --resume to continue it or choose another --out`);
    }
    writeExperiment(outDir, experiment);
    options.events?.onStart?.({
      startEpoch: trainer.state.epoch,
      epochs: experiment.training.epochs,
      unrollsPerEpoch: experiment.training.episodesPerEpoch * trainer.unrollsPerEpisode,
      metaGradient: trainer.metaGradientPath,
      ...(trainer.schedule && { schedule: `${trainer.schedule.name} over ${trainer.plannedOuterSteps} outer steps` }),
    });
    const reports: EpochReport[] = [];
    while (trainer.state.epoch < experiment.training.epochs) {
      const report = await trainer.trainEpoch();
      reports.push(report);
      rows.push(logRow(report));
      const weights = meta.getWeights();
      const adam = trainer.adam.state().tensors;
      try {
        // On webgpu the snapshot's synchronous reads need the values on the host first.
        await readable(...Object.values(weights), ...Object.values(adam));
        if (report.best) writeSnapshot(outDir, 'best', { metaOptimizer: meta.config(), weights });
        writeSnapshot(outDir, 'latest', { metaOptimizer: meta.config(), weights, trainer: { ...trainer.state }, adam });
      } finally {
        for (const t of Object.values(weights)) t.dispose();
      }
      writeFileAtomic(logFile, toCsv(rows));
    }
    return {
      outDir,
      epochs: trainer.state.epoch,
      bestEpoch: trainer.state.bestEpoch,
      bestValidation: trainer.state.bestValidation,
      skipped: trainer.state.skipped,
      reports,
    };
  } finally {
    // A failure while freeing (a wasm heap already out of bounds, say) must not hide the error that got us here.
    built.dispose();
  }
}
