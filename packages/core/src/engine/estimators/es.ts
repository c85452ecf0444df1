import type { EstimatorSetup, GradientEstimate, MetaGradientEstimator, TruncationState } from '../../contracts/estimator';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import type { Task } from '../../contracts/task';
import { UserError } from '../../errors';
import { deriveSeed } from '../../random';
import { disposeTree, type NamedTensors } from '../../tensor-tree';
import { accumulate, checkThreads, shifted, standardNoise, toTensors, zeroSums, type Objective } from './common';
import { FusedForwardPath, type ForwardPath, TfjsForwardPath } from './forward-path';
import { fusedKernelFor } from './tbptt';

/** Options of the `es` and `pes` estimators (their JSON Schema is in ./index.ts). */
export interface EsOptions {
  /** Standard deviation σ of the Gaussian perturbation of φ. */
  readonly sigma: number;
  /** Antithetic pairs per task and outer step. */
  readonly samples: number;
  /** The meta-objective: null for training.lossWeights' sum of the truncation's losses; `fullLoss` or a metric name. */
  readonly metric: string | null;
}

/**
 * Refuses training options an evolution-strategies estimator has no use for, naming the field, and picks where
 * its forward passes run: the meta-optimizer's fused kernel (training.kernel "auto" or "fused", in
 * training.workers threads) or tfjs.
 */
export function forwardPathFor(type: string, setup: EstimatorSetup): ForwardPath<unknown> {
  const { meta, training: t } = setup;
  const why = t.secondDerivatives ? 'training.secondDerivatives (ES needs no derivatives)' : t.checkpointEvery ? `training.checkpointEvery (${t.checkpointEvery})` : undefined;
  if (why) throw new UserError(`training.estimator "${type}" runs forward passes only, so ${why} does not apply: remove it, or use training.estimator "tbptt"`);
  if (meta.optimizer.length === 0) {
    // A meta-optimizer whose optimizer() takes no weights would silently evaluate the live φ at every perturbation.
    throw new UserError(`training.estimator "${type}" needs meta-optimizer "${meta.type}" to build its optimizer from given weights (MetaOptimizer.optimizer(weights))`);
  }
  const workers = t.workers ?? 0;
  const { kernel, why: noKernel } = fusedKernelFor(meta, { kernel: t.kernel, secondDerivatives: false });
  if (!kernel) {
    if (workers > 0) throw new UserError(`training.estimator "${type}" runs its forward passes on tfjs here (${noKernel}), so training.workers (${workers}) does not apply: set it to 0`);
    return new TfjsForwardPath(meta, `tfjs forward passes (${noKernel})`);
  }
  const threads = Math.max(1, workers);
  return new FusedForwardPath(meta, kernel, threads, `fused forward passes (${kernel.description}, ${threads} thread${threads > 1 ? 's' : ''})`);
}

export function checkEsOptions(type: string, o: EsOptions): void {
  if (!(o.sigma > 0) || !Number.isFinite(o.sigma)) throw new UserError(`training.estimator "${type}": options.sigma must be a finite number > 0, got ${o.sigma}`);
  if (!Number.isInteger(o.samples) || o.samples < 1) throw new UserError(`training.estimator "${type}": options.samples must be an integer ≥ 1, got ${o.samples}`);
}

/** What ES and PES share: checked options, the meta-optimizer, the objective and where the forward passes run. */
export abstract class ForwardEstimator {
  protected readonly meta: MetaOptimizer;
  protected readonly objective: Objective;
  protected readonly path: ForwardPath<unknown>;
  private readonly workers: number;

  constructor(
    type: string,
    setup: EstimatorSetup,
    readonly options: EsOptions,
  ) {
    checkEsOptions(type, options);
    this.path = forwardPathFor(type, setup);
    this.meta = setup.meta;
    this.workers = setup.training.workers ?? 0;
    this.objective = { lossWeights: setup.training.lossWeights, metric: options.metric };
  }

  /** A run of `task` from `params` (taken over) on the estimator's path. */
  protected start(task: Task, params: NamedTensors, batchSeed: number): unknown {
    checkThreads(this.workers, params);
    return this.path.start(task, params, batchSeed);
  }

  /** Nothing to free: the states hold the runs. */
  dispose(): void {}
}

class EsState implements TruncationState {
  constructor(
    readonly task: Task,
    readonly batchSeed: number,
    private readonly path: ForwardPath<unknown>,
    public run: unknown,
  ) {}
  get loss(): number {
    return this.path.loss(this.run);
  }
  dispose(): void {
    if (this.run !== undefined) this.path.dispose(this.run);
    this.run = undefined;
  }
}

/**
 * Antithetic evolution strategies over truncated unrolls (as learned_optimization's TruncatedES): for each task
 * and sample, z ~ N(0, I), the truncation runs from the task's state once with φ + σz and once with φ − σz, and
 * (L⁺ − L⁻)/(2σ)·z estimates the gradient of E_z[L(φ + σz)], the Gaussian-smoothed meta-objective of that
 * truncation; the state then advances with the unperturbed φ. Forward passes only (on the fused kernel where
 * the meta-optimizer has one), so any meta-objective works (a held-out metric, say) and no tape is kept. Like
 * tbptt it treats the truncation's start as given, so over short truncations it is biased in the same way (PES
 * is not).
 */
export class EsEstimator extends ForwardEstimator implements MetaGradientEstimator<EsState> {
  readonly type = 'es';
  readonly description: string;

  constructor(setup: EstimatorSetup, options: EsOptions) {
    super('es', setup, options);
    this.description = `meta-gradients: antithetic ES over truncations (σ ${options.sigma}, ${options.samples} pair${options.samples > 1 ? 's' : ''} per task, objective ${describeObjective(this.objective)}), ${this.path.description}`;
  }

  init(task: Task, params: NamedTensors, batchSeed: number): EsState {
    return new EsState(task, batchSeed, this.path, this.start(task, params, batchSeed));
  }

  async estimate(states: EsState[], length: number, seed: number, firstTask = 0): Promise<GradientEstimate> {
    const { sigma, samples } = this.options;
    const { path } = this;
    const variables = this.meta.variables;
    const sums = zeroSums(variables);
    const where = 'training.estimator.options';
    const metaLosses: number[] = [];
    for (const [i, state] of states.entries()) {
      for (let j = 0; j < samples; j++) {
        const z = standardNoise(variables, deriveSeed(seed, 'es', firstTask + i, j));
        const values: number[] = [];
        for (const sign of [1, -1]) {
          const weights = shifted(variables, z, sign * sigma);
          try {
            const { value, next } = await path.forward(state.task, state.run, weights, length, state.batchSeed, this.objective, where);
            path.discard(next, state.run);
            values.push(value);
          } finally {
            disposeTree(weights);
          }
        }
        accumulate(sums, z, (values[0]! - values[1]!) / (2 * sigma));
      }
      const { value, next } = await path.forward(state.task, state.run, null, length, state.batchSeed, this.objective, where);
      path.discard(state.run, next);
      state.run = next;
      metaLosses.push(value);
    }
    return { grads: toTensors(variables, sums, 1 / (states.length * samples)), metaLosses };
  }
}

export function describeObjective(o: Objective): string {
  return o.metric !== null ? `held-out ${o.metric} at the truncation's end` : o.lossWeights === 'last' ? "the truncation's last loss" : "the sum of the truncation's losses";
}
