import * as tf from '@tensorflow/tfjs-core';
import type { EstimatorSetup, EstimatorTraining, GradientEstimate, MetaGradientEstimator, TruncationState } from '../../contracts/estimator';
import type { FusedKernel } from '../../contracts/fused';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import type { Optimizer } from '../../contracts/optimizer';
import type { Task } from '../../contracts/task';
import { readsSynchronously } from '../../backend';
import { UserError } from '../../errors';
import { disposeTree, type NamedTensors } from '../../tensor-tree';
import { FusedEpisode } from '../fused';
import { readable } from '../steps';
import { metaGradient } from '../meta-gradient';
import { ChunkedMetaGradient, type MetaOptimizerSource } from '../parallel/chunked-meta-gradient';
import { chunkBounds } from '../parallel/protocol';
import { backendMemoryLimit, checkUnrollMemory, chunkMemoryEstimate, estimateUnrollMemory } from '../tape-memory';
import { disposeCarry, startRun, type Carry } from '../unroll';
import { addInto, checkThreads, scaleInPlace } from './common';

/** The extras (EstimatorSetup.extras) tbptt reads. */
export interface TbpttExtras {
  /** How worker threads rebuild the meta-optimizer (training.workers > 0 on the tape). */
  workerSource?: MetaOptimizerSource;
  /** Bytes an unroll's tape may use (undefined: the backend's cap, null: unchecked); read at the first unroll. */
  memoryLimit?: () => number | null | undefined;
}

/**
 * The meta-optimizer's fused kernel as `options.kernel` asks for it, or why none runs; throws a UserError when
 * "fused" is asked for and cannot run.
 */
export function fusedKernelFor(meta: MetaOptimizer, options: Pick<EstimatorTraining, 'kernel' | 'secondDerivatives'>): { kernel?: FusedKernel; why: string; onDevice?: boolean } {
  const choice = options.kernel ?? 'auto';
  if (choice === 'tfjs') return { why: 'training.kernel "tfjs"' };
  const kernel = meta.optimizer().fused;
  // The kernel takes every step's gradients on the host; on webgpu the tape keeps them on the device.
  const why = options.secondDerivatives
    ? 'second derivatives are on'
    : !kernel
      ? `meta-optimizer "${meta.type}" has no fused kernel`
      : !readsSynchronously()
        ? `the ${tf.getBackend()} backend keeps tensors on the device`
        : undefined;
  if (why) {
    if (choice === 'fused') throw new UserError(`training.kernel is "fused", but ${why}: set training.kernel to "auto" or "tfjs"`);
    // onDevice: a kernel exists, and only the backend keeps it from running.
    return { why, onDevice: !options.secondDerivatives && kernel !== undefined };
  }
  return { kernel, why: '' };
}

/**
 * Which path computes meta-gradients for `options.kernel`: the meta-optimizer's fused kernel, or the tfjs tape;
 * throws a UserError when "fused" is asked for and cannot run.
 */
export function choosePath(meta: MetaOptimizer, options: Pick<EstimatorTraining, 'kernel' | 'secondDerivatives' | 'workers'>): { kernel?: FusedKernel; description: string } {
  const { kernel, why, onDevice } = fusedKernelFor(meta, options);
  // Measured on an H200 against 16 CPU threads (bench/results.md): below this the GPU's launches cost more.
  const hint = onDevice ? '; below about 100,000 coordinates its fused kernel on backend wasm is faster' : '';
  const gpuStep = tf.getBackend() === 'webgpu' && !options.secondDerivatives ? meta.optimizer().gpuStep : undefined;
  if (!kernel) return { description: `meta-gradients: tfjs tape (${why}${hint})${gpuStep ? `; ${gpuStep}` : ''}` };
  const threads = Math.max(1, options.workers ?? 0);
  return { kernel, description: `meta-gradients: fused kernel, ${kernel.description}, first-order, ${threads} thread${threads > 1 ? 's' : ''}` };
}

/** A task's run under tbptt: a carry on the tape path, or a fused kernel's episode. */
class TbpttState implements TruncationState {
  constructor(
    readonly task: Task,
    readonly batchSeed: number,
    public carry?: Carry,
    readonly fused?: FusedEpisode,
  ) {}
  /** Read after `estimate` made the carry's loss readable (on webgpu, tfjs keeps it on the host then). */
  get loss(): number {
    return this.fused ? this.fused.currentLoss : this.carry!.loss.dataSync()[0]!;
  }
  dispose(): void {
    if (this.carry) disposeCarry(this.carry);
    this.carry = undefined;
    this.fused?.dispose();
  }
}

/**
 * Truncated backpropagation through time (Andrychowicz et al. 2016): the exact gradient of each truncation's
 * meta-loss with respect to φ, the history before the truncation cut. First- or second-order, with gradient
 * checkpointing, worker threads, and the meta-optimizer's fused kernel where it has one. Biased over short
 * truncations (it ignores how φ moved the state a truncation starts from); the default estimator.
 */
export class TbpttEstimator implements MetaGradientEstimator<TbpttState> {
  readonly type = 'tbptt';
  readonly description: string;
  /** The meta-optimizer's fused kernel when meta-gradients run on it (training.kernel, engine/fused.ts). */
  readonly fused?: FusedKernel;
  /** The worker threads' meta-gradient when `training.workers` > 0 on the tfjs path (threads start with the first unroll). */
  readonly chunked?: ChunkedMetaGradient;
  private readonly meta: MetaOptimizer;
  private readonly training: EstimatorTraining;
  private readonly memoryLimit: () => number | null | undefined;
  private memoryChecked = false;

  constructor(setup: EstimatorSetup) {
    const { meta, training } = setup;
    const extras = (setup.extras ?? {}) as TbpttExtras;
    this.meta = meta;
    this.training = training;
    this.memoryLimit = extras.memoryLimit ?? (() => undefined);
    const workers = training.workers ?? 0;
    const choice = choosePath(meta, training);
    this.fused = choice.kernel;
    this.description = choice.description;
    if (workers > 0 && !this.fused) {
      if (!readsSynchronously()) {
        // The threads exchange φ, parameters and gradients through shared memory, read synchronously.
        throw new UserError(`training.workers (${workers}) splits coordinates over CPU threads, which the ${tf.getBackend()} backend does not use: set training.workers to 0`);
      }
      if (training.secondDerivatives) {
        throw new UserError(`training.workers (${workers}) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0`);
      }
      if (!extras.workerSource) {
        throw new UserError(
          `training.workers (${workers}): worker threads need to know how to rebuild the meta-optimizer "${meta.type}" ` +
            '(MetaTrainer\'s workerSource: a module and export; l2l train passes its own), or set training.workers to 0',
        );
      }
      if (training.tasksPerStep > 1) {
        throw new UserError(`training.workers (${workers}) on the tfjs tape runs one task at a time: set training.tasksPerStep to 1, or training.workers to 0`);
      }
      // Checks that the meta-optimizer is coordinatewise; starts no thread yet.
      this.chunked = new ChunkedMetaGradient(meta, { workers, source: extras.workerSource });
    }
  }

  init(task: Task, params: NamedTensors, batchSeed: number): TbpttState {
    const workers = this.training.workers ?? 0;
    if (this.fused) {
      checkThreads(workers, params);
      return new TbpttState(task, batchSeed, undefined, new FusedEpisode(task, this.fused, params, batchSeed, Math.max(1, workers)));
    }
    return new TbpttState(task, batchSeed, startRun(task, this.meta.optimizer(), params, batchSeed));
  }

  async estimate(states: TbpttState[], length: number): Promise<GradientEstimate> {
    const sum: NamedTensors = {};
    const metaLosses: number[] = [];
    try {
      for (const state of states) {
        const { metaLoss, grads } = state.fused ? this.fusedUnroll(state.fused, length) : await this.tapeUnroll(state, length);
        metaLosses.push(metaLoss);
        addInto(sum, grads);
      }
      scaleInPlace(sum, 1 / states.length);
      return { grads: sum, metaLosses };
    } catch (e) {
      disposeTree(sum);
      throw e;
    }
  }

  private fusedUnroll(run: FusedEpisode, length: number): { metaLoss: number; grads: NamedTensors } {
    const { metaLoss, grads } = run.unroll(length, this.training.lossWeights);
    const named: NamedTensors = {};
    for (const [name, g] of Object.entries(grads)) named[name] = tf.tensor(g, this.meta.variables[name]!.shape, 'float32');
    return { metaLoss, grads: named };
  }

  private async tapeUnroll(state: TbpttState, length: number): Promise<{ metaLoss: number; grads: NamedTensors }> {
    const { training } = this;
    const optimizer = this.meta.optimizer();
    const carry = state.carry!;
    if (!this.memoryChecked) this.checkMemory(state.task, optimizer, carry, state.batchSeed, length);
    const gradientOptions = {
      length,
      lossWeights: training.lossWeights,
      secondDerivatives: training.secondDerivatives,
      batchSeed: state.batchSeed,
      training: true,
      checkpointEvery: training.checkpointEvery,
    };
    const { metaLoss: value, grads, losses, next } = this.chunked
      ? this.chunked.metaGradient(state.task, carry, gradientOptions)
      : metaGradient(state.task, optimizer, carry, this.meta.variables, gradientOptions);
    // The state's `loss` reads the next carry's loss synchronously.
    await readable(value, next.loss);
    const metaLoss = value.dataSync()[0]!;
    value.dispose();
    losses.dispose();
    disposeTree(carry, next);
    state.carry = next;
    return { metaLoss, grads };
  }

  /** Throws a UserError when an unroll's tape would not fit in the memory limit (see tape-memory.ts). */
  private checkMemory(task: Task, optimizer: Optimizer, carry: Carry, batchSeed: number, length: number): void {
    const configured = this.memoryLimit();
    const limit = configured === undefined ? backendMemoryLimit() : configured;
    if (limit !== null) {
      const { training } = this;
      const probe = { length: 1, lossWeights: training.lossWeights, secondDerivatives: training.secondDerivatives, batchSeed, training: true };
      const estimate = estimateUnrollMemory(task, optimizer, carry, this.meta.variables, probe);
      const workers = training.workers ?? 0;
      if (workers > 0) {
        // Each worker's heap holds the tape of its chunk only; the largest chunk decides.
        const largest = Math.max(...chunkBounds(estimate.coordinates, workers).map(([lo, hi]) => hi - lo));
        checkUnrollMemory(chunkMemoryEstimate(estimate, largest), length, training.checkpointEvery, limit, undefined, workers);
      } else {
        const couldSplit = this.meta.coordinatewise === true && !training.secondDerivatives;
        checkUnrollMemory(estimate, length, training.checkpointEvery, limit, undefined, couldSplit ? 0 : undefined);
      }
    }
    this.memoryChecked = true;
  }

  dispose(): void {
    void this.chunked?.dispose();
  }
}
