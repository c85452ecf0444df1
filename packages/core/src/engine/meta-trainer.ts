import * as tf from '@tensorflow/tfjs-core';
import { trainingProblems, type TrainingOptions } from './options';
import type { EstimatorFactory, GradientEstimate, MetaGradientEstimator, TruncationState } from '../contracts/estimator';
import type { Population, PopulationSource } from '../contracts/population';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Optimizer } from '../contracts/optimizer';
import type { FusedKernel } from '../contracts/fused';
import type { Task, TaskConfig, TaskFamily } from '../contracts/task';
import { UserError } from '../errors';
import { deriveSeed } from '../random';
import { disposeTree, type NamedTensors } from '../tensor-tree';
import { builtinEstimator } from './estimators';
import { TbpttEstimator, type TbpttExtras } from './estimators/tbptt';
import { MetaAdam } from './meta-adam';
import { FunctionalOuter, type OuterOptimizer } from './outer-optimizer';
import { runOptimizerAsync } from './run';
import { runStepsAsync, scalarStep } from './steps';
import type { ChunkedMetaGradient, MetaOptimizerSource } from './parallel/chunked-meta-gradient';
import { applyTrainingTricks } from './tricks';
import { builtinSchedule, scheduleFactor } from './schedules';
import type { LearningRateSchedule } from '../contracts/schedule';

export interface UnrollEvent {
  epoch: number;
  episode: number;
  unroll: number;
  unrollsPerEpisode: number;
  metaLoss: number;
  /** Completed unrolls in this epoch / in all of it. */
  done: number;
  total: number;
}

export interface EpochReport {
  epoch: number;
  /** Mean meta-loss per unroll over the epoch's completed unrolls. */
  metaLoss: number;
  /** Mean optimizee loss after the last step of each completed episode. */
  finalLoss: number;
  /** Episodes cut short this epoch because a loss or meta-gradient was not finite. */
  skipped: number;
  seconds: number;
  /** Held-out validation loss, when validated this epoch. */
  validationLoss?: number;
  /** True when this epoch's validation is the best so far. */
  best?: boolean;
  /** The learning-rate schedule's factor at the epoch's last outer step, when the run has a schedule. */
  learningRateFactor?: number;
}

export interface TrainerEvents {
  onUnroll?(event: UnrollEvent): void;
  onEpoch?(report: EpochReport): void;
  onSkip?(message: string): void;
}

export { choosePath } from './estimators/tbptt';

export interface TrainerState {
  /** Completed epochs. */
  epoch: number;
  adamStep: number;
  bestValidation: number | null;
  bestEpoch: number | null;
  skipped: number;
}

/** A scalar computed by `f` (inside tidy), read on any backend. */
function readScalar(f: () => tf.Scalar): Promise<number> {
  return runStepsAsync(scalarStep(tf.tidy(f)));
}

async function allFinite(values: tf.Tensor[]): Promise<boolean> {
  if (values.length === 0) return true;
  return Number.isFinite(await readScalar(() => tf.sum(tf.stack(values.map((v) => tf.sum(v)))) as tf.Scalar));
}

/** Scales `grads` so their global L2 norm is at most `maxNorm` (in place in the map). */
async function clipByGlobalNorm(grads: NamedTensors, maxNorm: number): Promise<void> {
  const norm = Math.sqrt(await readScalar(() => tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))) as tf.Scalar));
  if (norm <= maxNorm) return;
  for (const k of Object.keys(grads)) {
    const old = grads[k]!;
    grads[k] = tf.mul(old, maxNorm / norm);
    old.dispose();
  }
}

/** Components of a run built at the edge (the pipeline, from the registry); absent ones take the engine's defaults. */
export interface TrainerParts {
  /** The meta-gradient estimator; default: the built-in one `training.estimator` names (tbptt when absent). */
  estimator?: EstimatorFactory;
  /** The outer optimizer of φ, built from `training.outerOptimizer`; default: Adam with `training.learningRate`. */
  outerOptimizer?: Optimizer;
  /** Where each episode's tasks live; default: here (`openPopulation`). @l2l/distributed puts them on workers. */
  population?: PopulationSource;
  /** The outer learning rate's schedule, built from `training.learningRateSchedule`; default: the built-in it names. */
  learningRateSchedule?: LearningRateSchedule;
}

/**
 * Meta-training. Each episode samples `tasksPerStep` training tasks (1 by default) with fresh parameters and
 * runs `steps` updates of the learned optimizer on each, cut into truncations of `unroll` steps; after each
 * truncation the estimator (`training.estimator`: truncated BPTT by default, or ES, PES) gives a meta-gradient
 * averaged over the tasks and the outer optimizer (Adam by default) takes one step on φ. All randomness is
 * derived from `seed` and (epoch, episode), so a run is reproducible and resumes exactly at an epoch boundary.
 */
export class MetaTrainer {
  /** The outer optimizer of φ (named `adam` for the default; any `OuterOptimizer`). */
  readonly adam: OuterOptimizer;
  readonly state: TrainerState = { epoch: 0, adamStep: 0, bestValidation: null, bestEpoch: null, skipped: 0 };
  /**
   * Bytes of tensor memory an unroll's meta-gradient may use, checked (by measuring the first episode's task)
   * before the first unroll: undefined takes the backend's cap (4 GiB on wasm), null checks nothing.
   */
  memoryLimit: number | null | undefined = undefined;
  readonly estimator: MetaGradientEstimator;
  /** Which path computes meta-gradients, in words (`l2l train` prints it). */
  readonly metaGradientPath: string;
  private readonly population?: PopulationSource;

  /**
   * `workerSource` says how worker threads rebuild the meta-optimizer; needed only with `training.workers` > 0
   * (`trainExperiment` passes the registry's `rebuild`).
   */
  constructor(
    readonly family: TaskFamily,
    readonly meta: MetaOptimizer,
    readonly options: TrainingOptions,
    readonly seed: number,
    readonly events: TrainerEvents = {},
    workerSource?: MetaOptimizerSource,
    parts: TrainerParts = {},
  ) {
    if (options.unroll > options.steps) {
      throw new UserError(`training: unroll (${options.unroll}) must not exceed steps (${options.steps})`);
    }
    const tasksPerStep = options.tasksPerStep ?? 1;
    if (!Number.isInteger(tasksPerStep) || tasksPerStep < 1) throw new UserError(`training.tasksPerStep must be an integer ≥ 1, got ${tasksPerStep}`);
    if ((options.workers ?? 0) > 0 && !parts.estimator && (options.estimator?.type ?? 'tbptt') === 'tbptt') {
      const [problem] = trainingProblems(options);
      if (problem) throw new UserError(problem);
    }
    if (options.outerOptimizer && !parts.outerOptimizer) {
      throw new UserError(`training.outerOptimizer "${options.outerOptimizer.type}" must be built by the pipeline (MetaTrainer's parts.outerOptimizer), which resolves it from the registry`);
    }
    const factory = parts.estimator ?? builtinEstimator(options.estimator);
    const extras: TbpttExtras = { workerSource, memoryLimit: () => this.memoryLimit };
    this.estimator = factory.create({
      meta,
      training: {
        lossWeights: options.lossWeights,
        secondDerivatives: options.secondDerivatives,
        checkpointEvery: options.checkpointEvery,
        workers: options.workers,
        kernel: options.kernel,
        tasksPerStep,
      },
      extras: extras as Record<string, unknown>,
    });
    this.population = parts.population;
    this.metaGradientPath = parts.population ? `${this.estimator.description}; ${parts.population.description}` : this.estimator.description;
    this.adam = parts.outerOptimizer ? new FunctionalOuter(parts.outerOptimizer) : new MetaAdam(options.learningRate);
    this.schedule = parts.learningRateSchedule ?? (options.learningRateSchedule && builtinSchedule(options.learningRateSchedule));
  }

  /** The outer learning rate's schedule (`training.learningRateSchedule`); undefined: constant. */
  readonly schedule?: LearningRateSchedule;

  /** Outer steps the run's schedule spans: every truncation of every episode of every epoch. */
  get plannedOuterSteps(): number {
    return this.options.epochs * this.options.episodesPerEpoch * this.unrollsPerEpisode;
  }

  /**
   * The schedule's factor for truncation `u` of an episode: its position in the run's plan, not the steps taken,
   * so that skipped episodes do not shift the schedule and a resumed run continues it exactly.
   */
  private learningRateFactor(epoch: number, episode: number, u: number): number | undefined {
    if (!this.schedule) return undefined;
    const step = (epoch * this.options.episodesPerEpoch + episode) * this.unrollsPerEpisode + u;
    return scheduleFactor(this.schedule, step, this.plannedOuterSteps);
  }

  /** The worker threads' meta-gradient when tbptt runs with `training.workers` > 0 on the tfjs path. */
  get chunked(): ChunkedMetaGradient | undefined {
    return this.estimator instanceof TbpttEstimator ? this.estimator.chunked : undefined;
  }

  /** The meta-optimizer's fused kernel when tbptt's meta-gradients run on it (training.kernel, engine/fused.ts). */
  get fused(): FusedKernel | undefined {
    return this.estimator instanceof TbpttEstimator ? this.estimator.fused : undefined;
  }

  /** Unrolls per episode (the last may be shorter when steps is not a multiple of unroll). */
  get unrollsPerEpisode(): number {
    return Math.ceil(this.options.steps / this.options.unroll);
  }

  /** An episode's seed for task `i` of its population (task 0 keeps the seeds of single-task runs). */
  private taskSeed(label: string, epoch: number, episode: number, i: number): number {
    return i === 0 ? deriveSeed(this.seed, label, epoch, episode) : deriveSeed(this.seed, label, epoch, episode, i);
  }

  /**
   * Tasks [first, end) of an episode's population (all `training.tasksPerStep` of them by default), built from
   * the run's seeds, with the estimator's truncation states: what an episode trains on here, and what a
   * distributed worker (@l2l/distributed) holds of it.
   */
  openPopulation(epoch: number, episode: number, first = 0, end = this.options.tasksPerStep ?? 1): Population {
    const tasks: Task[] = [];
    const configs: TaskConfig[] = [];
    const states: TruncationState[] = [];
    try {
      for (let i = first; i < end; i++) {
        const taskConfig = this.family.sample(this.taskSeed('train-task', epoch, episode, i), 'train');
        // Training tricks (random scaling, convex combination) wrap the task; off by default, never in validation.
        const task = applyTrainingTricks(this.family.build(taskConfig), this.options, this.taskSeed('train-tricks', epoch, episode, i));
        tasks.push(task);
        configs.push(taskConfig);
        const params = task.initParams(this.taskSeed('train-init', epoch, episode, i));
        states.push(this.estimator.init(task, params, this.taskSeed('train-batch', epoch, episode, i)));
      }
    } catch (e) {
      for (const s of states) s.dispose();
      for (const t of tasks) t.dispose();
      throw e;
    }
    return new LocalPopulation(configs, tasks, states, this.estimator, this.meta.variables, first);
  }

  /** One episode; returns the meta-losses of its unrolls and its final optimizee loss, or null if it was skipped. */
  private async episode(epoch: number, episode: number, onUnroll: (u: number, metaLoss: number) => void): Promise<{ metaLosses: number[]; finalLoss: number } | null> {
    const { options } = this;
    const population = await (this.population ? this.population.open(epoch, episode) : this.openPopulation(epoch, episode));
    try {
      const metaLosses: number[] = [];
      for (let u = 0; u < this.unrollsPerEpisode; u++) {
        const length = Math.min(options.unroll, options.steps - u * options.unroll);
        const { grads: named, metaLosses: losses } = await population.estimate(this.meta.variables, length, deriveSeed(this.seed, 'estimator', epoch, episode, u));
        const metaLoss = losses.reduce((a, b) => a + b, 0) / losses.length;
        const finite = Number.isFinite(metaLoss) && (await allFinite(Object.values(named))) && population.losses().every((l) => Number.isFinite(l));
        if (!finite) {
          disposeTree(named);
          const where = `epoch ${epoch + 1}, episode ${episode + 1}, unroll ${u + 1}`;
          const { configs } = population;
          const on = configs.length === 1 ? `task ${JSON.stringify(configs[0])}` : `tasks ${JSON.stringify(configs)}`;
          const message = `non-finite meta-loss or meta-gradient (${metaLoss}) at ${where} on ${on}`;
          if (options.nonFinite === 'stop') throw new UserError(`meta-training stopped: ${message}`);
          this.events.onSkip?.(`skipped the rest of the episode: ${message}`);
          return null;
        }
        try {
          if (options.gradClipNorm !== null) await clipByGlobalNorm(named, options.gradClipNorm);
          this.adam.apply(this.meta.variables, named, this.learningRateFactor(epoch, episode, u));
        } finally {
          disposeTree(named);
        }
        metaLosses.push(metaLoss);
        onUnroll(u, metaLoss);
      }
      const finals = population.losses();
      return { metaLosses, finalLoss: finals.reduce((a, b) => a + b, 0) / finals.length };
    } finally {
      await population.dispose();
    }
  }

  /** Runs the next epoch; validates when due (every `validateEvery` epochs and at the last). */
  async trainEpoch(): Promise<EpochReport> {
    const epoch = this.state.epoch;
    const started = Date.now();
    const { episodesPerEpoch } = this.options;
    const total = episodesPerEpoch * this.unrollsPerEpisode;
    const metaLosses: number[] = [];
    const finals: number[] = [];
    let skipped = 0;
    let done = 0;
    for (let e = 0; e < episodesPerEpoch; e++) {
      const r = await this.episode(epoch, e, (u, metaLoss) => {
        done++;
        this.events.onUnroll?.({ epoch, episode: e, unroll: u, unrollsPerEpisode: this.unrollsPerEpisode, metaLoss, done, total });
      });
      if (r) {
        metaLosses.push(...r.metaLosses);
        finals.push(r.finalLoss);
      } else {
        skipped++;
        done = (e + 1) * this.unrollsPerEpisode;
      }
      // Let timers (progress bars, signals) run between episodes.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.state.epoch = epoch + 1;
    this.state.adamStep = this.adam.step;
    this.state.skipped += skipped;
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
    const report: EpochReport = { epoch: epoch + 1, metaLoss: mean(metaLosses), finalLoss: mean(finals), skipped, seconds: (Date.now() - started) / 1000 };
    const factor = this.learningRateFactor(epoch, episodesPerEpoch - 1, this.unrollsPerEpisode - 1);
    if (factor !== undefined) report.learningRateFactor = factor;
    if (this.state.epoch % this.options.validateEvery === 0 || this.state.epoch === this.options.epochs) {
      const v = await this.validate();
      report.validationLoss = v;
      if (Number.isFinite(v) && (this.state.bestValidation === null || v < this.state.bestValidation)) {
        this.state.bestValidation = v;
        this.state.bestEpoch = this.state.epoch;
        report.best = true;
      } else report.best = false;
    }
    this.events.onEpoch?.(report);
    return report;
  }

  /**
   * Mean loss of the learned optimizer over `validationTasks` validation-split tasks (never test tasks, which
   * are for evaluation only): the average over all `steps` steps, or the last step's loss with lossWeights "last".
   */
  async validate(): Promise<number> {
    const optimizer = this.meta.optimizer();
    const kernel = this.options.kernel === 'tfjs' ? 'tfjs' : 'auto';
    const threads = Math.max(1, this.options.workers ?? 0);
    let sum = 0;
    for (let i = 0; i < this.options.validationTasks; i++) {
      const task = this.family.build(this.family.sample(deriveSeed(this.seed, 'validation-task', i), 'validation'));
      try {
        const { losses } = await runOptimizerAsync(task, optimizer, {
          steps: this.options.steps,
          initSeed: deriveSeed(this.seed, 'validation-init', i),
          batchSeed: deriveSeed(this.seed, 'validation-batch', i),
          kernel,
          threads,
        });
        const after = losses.subarray(1);
        sum += this.options.lossWeights === 'last' ? after[after.length - 1]! : after.reduce((a, b) => a + b, 0) / after.length;
      } finally {
        task.dispose();
      }
    }
    const v = sum / this.options.validationTasks;
    return Number.isFinite(v) ? v : Infinity;
  }

  /** Restores a checkpoint's trainer state and outer optimizer state (weights are set on the meta-optimizer first). */
  restore(state: TrainerState, adamTensors: NamedTensors): void {
    Object.assign(this.state, state);
    this.adam.restore(state.adamStep, adamTensors, this.meta.variables);
  }

  /** Frees the outer optimizer's state, the estimator and the population source (worker threads: await `chunked.dispose()` to see them gone). */
  dispose(): void {
    this.adam.dispose();
    this.estimator.dispose();
    void this.population?.close?.();
  }
}

/** An episode's tasks held in this process with their estimator's truncation states. */
class LocalPopulation implements Population {
  constructor(
    readonly configs: readonly TaskConfig[],
    private readonly tasks: readonly Task[],
    private readonly states: readonly TruncationState[],
    private readonly estimator: MetaGradientEstimator,
    private readonly variables: Readonly<Record<string, tf.Variable>>,
    /** Index of the first task in the episode's population (the estimator keys per-task randomness by it). */
    private readonly first: number,
  ) {}

  async estimate(phi: NamedTensors, length: number, seed: number): Promise<GradientEstimate> {
    // The estimator differentiates the meta-optimizer's variables: a φ from elsewhere (a worker's) is set there.
    for (const [name, v] of Object.entries(this.variables)) {
      const value = phi[name];
      if (!value) throw new Error(`population: φ has no weight "${name}"`);
      if (value !== v) v.assign(value);
    }
    return this.estimator.estimate([...this.states], length, seed, this.first);
  }

  losses(): number[] {
    return this.states.map((s) => s.loss);
  }

  dispose(): void {
    for (const s of this.states) s.dispose();
    for (const t of this.tasks) t.dispose();
  }
}
