import * as tf from '@tensorflow/tfjs-core';
import { trainingProblems, type TrainingOptions } from '../config/experiment';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Optimizer } from '../contracts/optimizer';
import type { FusedKernel } from '../contracts/fused';
import type { Task, TaskConfig, TaskFamily } from '../contracts/task';
import { UserError } from '../errors';
import { deriveSeed } from '../random';
import { countCoordinates, disposeTree, type NamedTensors } from '../tensor-tree';
import { MetaAdam } from './meta-adam';
import { FusedEpisode } from './fused';
import { metaGradient } from './meta-gradient';
import { runOptimizer } from './run';
import { ChunkedMetaGradient, type MetaOptimizerSource } from './parallel/chunked-meta-gradient';
import { chunkBounds } from './parallel/protocol';
import { backendMemoryLimit, checkUnrollMemory, chunkMemoryEstimate, estimateUnrollMemory } from './tape-memory';
import { applyTrainingTricks } from './tricks';
import { disposeCarry, startRun, type Carry } from './unroll';

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
}

export interface TrainerEvents {
  onUnroll?(event: UnrollEvent): void;
  onEpoch?(report: EpochReport): void;
  onSkip?(message: string): void;
}

export interface TrainerState {
  /** Completed epochs. */
  epoch: number;
  adamStep: number;
  bestValidation: number | null;
  bestEpoch: number | null;
  skipped: number;
}

function allFinite(values: tf.Tensor[]): boolean {
  if (values.length === 0) return true;
  return tf.tidy(() => {
    const sums = values.map((v) => tf.sum(v));
    return Number.isFinite(tf.sum(tf.stack(sums)).dataSync()[0]);
  });
}

/** Scales `grads` so their global L2 norm is at most `maxNorm` (in place in the map). */
function clipByGlobalNorm(grads: NamedTensors, maxNorm: number): void {
  const norm = tf.tidy(() => Math.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))).dataSync()[0]!));
  if (norm <= maxNorm) return;
  for (const k of Object.keys(grads)) {
    const old = grads[k]!;
    grads[k] = tf.mul(old, maxNorm / norm);
    old.dispose();
  }
}

/**
 * Which path computes meta-gradients for `options.kernel`: the meta-optimizer's fused kernel, or the tfjs tape;
 * throws a UserError when "fused" is asked for and cannot run.
 */
export function choosePath(meta: MetaOptimizer, options: Pick<TrainingOptions, 'kernel' | 'secondDerivatives' | 'workers'>): { kernel?: FusedKernel; description: string } {
  const choice = options.kernel ?? 'auto';
  const optimizer = choice === 'tfjs' ? undefined : meta.optimizer();
  const kernel = optimizer?.fused;
  const why = options.secondDerivatives
    ? 'second derivatives are on'
    : !kernel
      ? `meta-optimizer "${meta.type}" has no fused kernel`
      : meta.coordinatewise !== true
        ? `meta-optimizer "${meta.type}" is not coordinatewise`
        : undefined;
  const threads = Math.max(1, options.workers ?? 0);
  if (choice === 'tfjs') return { description: 'meta-gradients: tfjs tape (training.kernel "tfjs")' };
  if (why) {
    if (choice === 'fused') throw new UserError(`training.kernel is "fused", but ${why}: set training.kernel to "auto" or "tfjs"`);
    return { description: `meta-gradients: tfjs tape (${why})` };
  }
  return { kernel, description: `meta-gradients: fused kernel, ${kernel!.description}, first-order, ${threads} thread${threads > 1 ? 's' : ''}` };
}

/**
 * Meta-training by truncated backpropagation through time (Andrychowicz et al. 2016). Each episode samples a
 * training task and fresh parameters, runs `steps` updates of the learned optimizer cut into unrolls of
 * `unroll` steps, and after each unroll takes one Adam step on the optimizer's weights. All randomness is
 * derived from `seed` and (epoch, episode), so a run is reproducible and resumes exactly at an epoch boundary.
 */
export class MetaTrainer {
  readonly adam: MetaAdam;
  readonly state: TrainerState = { epoch: 0, adamStep: 0, bestValidation: null, bestEpoch: null, skipped: 0 };
  /**
   * Bytes of tensor memory an unroll's meta-gradient may use, checked (by measuring the first episode's task)
   * before the first unroll: undefined takes the backend's cap (4 GiB on wasm), null checks nothing.
   */
  memoryLimit: number | null | undefined = undefined;
  private memoryChecked = false;
  /** The worker threads' meta-gradient when `training.workers` > 0 on the tfjs path (threads start with the first unroll). */
  readonly chunked?: ChunkedMetaGradient;
  /** The meta-optimizer's fused kernel when meta-gradients run on it (training.kernel, engine/fused.ts). */
  readonly fused?: FusedKernel;
  /** Which path computes meta-gradients, in words (`l2l train` prints it). */
  readonly metaGradientPath: string;

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
  ) {
    if (options.unroll > options.steps) {
      throw new UserError(`training: unroll (${options.unroll}) must not exceed steps (${options.steps})`);
    }
    const workers = options.workers ?? 0;
    const choice = choosePath(meta, options);
    this.fused = choice.kernel;
    this.metaGradientPath = choice.description;
    if (workers > 0 && !this.fused) {
      const [problem] = trainingProblems(options);
      if (problem) throw new UserError(problem);
      if (!workerSource) {
        throw new UserError(
          `training.workers (${workers}): worker threads need to know how to rebuild the meta-optimizer "${meta.type}" ` +
            '(MetaTrainer\'s workerSource: a module and export; l2l train passes its own), or set training.workers to 0',
        );
      }
      // Checks that the meta-optimizer is coordinatewise; starts no thread yet.
      this.chunked = new ChunkedMetaGradient(meta, { workers, source: workerSource });
    }
    this.adam = new MetaAdam(options.learningRate);
  }

  /** Unrolls per episode (the last may be shorter when steps is not a multiple of unroll). */
  get unrollsPerEpisode(): number {
    return Math.ceil(this.options.steps / this.options.unroll);
  }

  /** One episode; returns the meta-losses of its unrolls and its final optimizee loss, or null if it was skipped. */
  private episode(epoch: number, episode: number, onUnroll: (u: number, metaLoss: number) => void): { metaLosses: number[]; finalLoss: number } | null {
    const { options } = this;
    const taskConfig = this.family.sample(deriveSeed(this.seed, 'train-task', epoch, episode), 'train');
    // Training tricks (random scaling, convex combination) wrap the task; off by default, never in validation.
    const task = applyTrainingTricks(this.family.build(taskConfig), options, deriveSeed(this.seed, 'train-tricks', epoch, episode));
    const batchSeed = deriveSeed(this.seed, 'train-batch', epoch, episode);
    if (this.fused) return this.fusedEpisode(task, taskConfig, batchSeed, epoch, episode, onUnroll);
    const optimizer = this.meta.optimizer();
    let carry: Carry = startRun(task, optimizer, task.initParams(deriveSeed(this.seed, 'train-init', epoch, episode)), batchSeed);
    const metaLosses: number[] = [];
    try {
      if (!this.memoryChecked) this.checkMemory(task, optimizer, carry, batchSeed);
      for (let u = 0; u < this.unrollsPerEpisode; u++) {
        const length = Math.min(options.unroll, options.steps - u * options.unroll);
        const gradientOptions = {
          length,
          lossWeights: options.lossWeights,
          secondDerivatives: options.secondDerivatives,
          batchSeed,
          training: true,
          checkpointEvery: options.checkpointEvery,
        };
        const { metaLoss: value, grads: named, losses, next } = this.chunked
          ? this.chunked.metaGradient(task, carry, gradientOptions)
          : metaGradient(task, optimizer, carry, this.meta.variables, gradientOptions);
        const metaLoss = value.dataSync()[0]!;
        const finite = Number.isFinite(metaLoss) && allFinite(Object.values(named)) && allFinite([next.loss]);
        value.dispose();
        losses.dispose();
        if (!finite) {
          disposeTree(named);
          disposeCarry(next);
          const where = `epoch ${epoch + 1}, episode ${episode + 1}, unroll ${u + 1}`;
          const message = `non-finite meta-loss or meta-gradient (${metaLoss}) at ${where} on task ${JSON.stringify(taskConfig)}`;
          if (options.nonFinite === 'stop') throw new UserError(`meta-training stopped: ${message}`);
          this.events.onSkip?.(`skipped the rest of the episode: ${message}`);
          return null;
        }
        if (options.gradClipNorm !== null) clipByGlobalNorm(named, options.gradClipNorm);
        this.adam.apply(this.meta.variables, named);
        disposeTree(named);
        disposeTree(carry, next);
        carry = next;
        metaLosses.push(metaLoss);
        onUnroll(u, metaLoss);
      }
      return { metaLosses, finalLoss: carry.loss.dataSync()[0]! };
    } finally {
      disposeCarry(carry);
      task.dispose();
    }
  }

  /** `episode` on the fused kernel: no tape, the kernel's state carried from unroll to unroll. */
  private fusedEpisode(
    task: Task,
    taskConfig: TaskConfig,
    batchSeed: number,
    epoch: number,
    episode: number,
    onUnroll: (u: number, metaLoss: number) => void,
  ): { metaLosses: number[]; finalLoss: number } | null {
    const { options } = this;
    let run: FusedEpisode | undefined;
    try {
      const params = task.initParams(deriveSeed(this.seed, 'train-init', epoch, episode));
      const workers = options.workers ?? 0;
      const n = countCoordinates(params);
      if (workers > n) {
        disposeTree(params);
        throw new UserError(`training.workers (${workers}) must not exceed the number of coordinates of the optimizee (${n})`);
      }
      run = new FusedEpisode(task, this.fused!, params, batchSeed, Math.max(1, workers));
      const metaLosses: number[] = [];
      for (let u = 0; u < this.unrollsPerEpisode; u++) {
        const length = Math.min(options.unroll, options.steps - u * options.unroll);
        const { metaLoss, grads } = run.unroll(length, options.lossWeights);
        const finite = Number.isFinite(metaLoss) && Number.isFinite(run.currentLoss) && Object.values(grads).every((g) => g.every(Number.isFinite));
        if (!finite) {
          const where = `epoch ${epoch + 1}, episode ${episode + 1}, unroll ${u + 1}`;
          const message = `non-finite meta-loss or meta-gradient (${metaLoss}) at ${where} on task ${JSON.stringify(taskConfig)}`;
          if (options.nonFinite === 'stop') throw new UserError(`meta-training stopped: ${message}`);
          this.events.onSkip?.(`skipped the rest of the episode: ${message}`);
          return null;
        }
        const named: NamedTensors = {};
        for (const [name, g] of Object.entries(grads)) named[name] = tf.tensor(g, this.meta.variables[name]!.shape, 'float32');
        try {
          if (options.gradClipNorm !== null) clipByGlobalNorm(named, options.gradClipNorm);
          this.adam.apply(this.meta.variables, named);
        } finally {
          disposeTree(named);
        }
        metaLosses.push(metaLoss);
        onUnroll(u, metaLoss);
      }
      return { metaLosses, finalLoss: run.currentLoss };
    } finally {
      run?.dispose();
      task.dispose();
    }
  }

  /** Throws a UserError when an unroll's tape would not fit in the memory limit (see tape-memory.ts). */
  private checkMemory(task: Task, optimizer: Optimizer, carry: Carry, batchSeed: number): void {
    const limit = this.memoryLimit === undefined ? backendMemoryLimit() : this.memoryLimit;
    if (limit !== null) {
      const { options } = this;
      const probe = { length: 1, lossWeights: options.lossWeights, secondDerivatives: options.secondDerivatives, batchSeed, training: true };
      const estimate = estimateUnrollMemory(task, optimizer, carry, this.meta.variables, probe);
      const length = Math.min(options.unroll, options.steps);
      const workers = options.workers ?? 0;
      if (workers > 0) {
        // Each worker's heap holds the tape of its chunk only; the largest chunk decides.
        const largest = Math.max(...chunkBounds(estimate.coordinates, workers).map(([lo, hi]) => hi - lo));
        checkUnrollMemory(chunkMemoryEstimate(estimate, largest), length, options.checkpointEvery, limit, undefined, workers);
      } else {
        const couldSplit = this.meta.coordinatewise === true && !options.secondDerivatives;
        checkUnrollMemory(estimate, length, options.checkpointEvery, limit, undefined, couldSplit ? 0 : undefined);
      }
    }
    this.memoryChecked = true;
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
      const r = this.episode(epoch, e, (u, metaLoss) => {
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
    if (this.state.epoch % this.options.validateEvery === 0 || this.state.epoch === this.options.epochs) {
      const v = this.validate();
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
  validate(): number {
    const optimizer = this.meta.optimizer();
    const kernel = this.options.kernel === 'tfjs' ? 'tfjs' : 'auto';
    const threads = Math.max(1, this.options.workers ?? 0);
    let sum = 0;
    for (let i = 0; i < this.options.validationTasks; i++) {
      const task = this.family.build(this.family.sample(deriveSeed(this.seed, 'validation-task', i), 'validation'));
      try {
        const { losses } = runOptimizer(task, optimizer, {
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

  /** Restores a checkpoint's trainer state and Adam moments (weights are set on the meta-optimizer). */
  restore(state: TrainerState, adamTensors: NamedTensors): void {
    Object.assign(this.state, state);
    this.adam.restore(state.adamStep, adamTensors);
  }

  /** Frees the Adam state and terminates the worker threads (await `chunked.dispose()` to see them gone). */
  dispose(): void {
    this.adam.dispose();
    void this.chunked?.dispose();
  }
}
