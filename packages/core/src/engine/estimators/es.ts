import type { EstimatorSetup, GradientEstimate, MetaGradientEstimator, TruncationState } from '../../contracts/estimator';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import type { Task } from '../../contracts/task';
import { UserError } from '../../errors';
import { deriveSeed } from '../../random';
import { disposeTree, type NamedTensors } from '../../tensor-tree';
import { disposeCarry, startRun, type Carry } from '../unroll';
import { accumulate, forward, shifted, standardNoise, toTensors, zeroSums, type Objective } from './common';

/** Options of the `es` and `pes` estimators (their JSON Schema is in ./index.ts). */
export interface EsOptions {
  /** Standard deviation σ of the Gaussian perturbation of φ. */
  readonly sigma: number;
  /** Antithetic pairs per task and outer step. */
  readonly samples: number;
  /** The meta-objective: null for training.lossWeights' sum of the truncation's losses; `fullLoss` or a metric name. */
  readonly metric: string | null;
}

/** Refuses training options an evolution-strategies estimator has no use for, naming the field. */
export function checkForwardOnly(type: string, setup: EstimatorSetup): void {
  const t = setup.training;
  const why = t.secondDerivatives
    ? 'training.secondDerivatives (ES needs no derivatives)'
    : (t.workers ?? 0) > 0
      ? `training.workers (${t.workers})`
      : t.kernel === 'fused'
        ? 'training.kernel "fused"'
        : t.checkpointEvery
          ? `training.checkpointEvery (${t.checkpointEvery})`
          : undefined;
  if (why) throw new UserError(`training.estimator "${type}" runs forward passes on the tfjs path only, so ${why} does not apply: remove it, or use training.estimator "tbptt"`);
  if (setup.meta.optimizer.length === 0) {
    // A meta-optimizer whose optimizer() takes no weights would silently evaluate the live φ at every perturbation.
    throw new UserError(`training.estimator "${type}" needs meta-optimizer "${setup.meta.type}" to build its optimizer from given weights (MetaOptimizer.optimizer(weights))`);
  }
}

export function checkEsOptions(type: string, o: EsOptions): void {
  if (!(o.sigma > 0) || !Number.isFinite(o.sigma)) throw new UserError(`training.estimator "${type}": options.sigma must be a finite number > 0, got ${o.sigma}`);
  if (!Number.isInteger(o.samples) || o.samples < 1) throw new UserError(`training.estimator "${type}": options.samples must be an integer ≥ 1, got ${o.samples}`);
}

/** What ES and PES share: checked options, the meta-optimizer and the objective. */
export abstract class ForwardEstimator {
  protected readonly meta: MetaOptimizer;
  protected readonly objective: Objective;

  constructor(
    type: string,
    setup: EstimatorSetup,
    readonly options: EsOptions,
  ) {
    checkEsOptions(type, options);
    checkForwardOnly(type, setup);
    this.meta = setup.meta;
    this.objective = { lossWeights: setup.training.lossWeights, metric: options.metric };
  }

  /** Nothing to free: the states hold the tensors. */
  dispose(): void {}
}

class EsState implements TruncationState {
  constructor(
    readonly task: Task,
    readonly batchSeed: number,
    public carry: Carry,
  ) {}
  get loss(): number {
    return this.carry.loss.dataSync()[0]!;
  }
  dispose(): void {
    disposeCarry(this.carry);
  }
}

/**
 * Antithetic evolution strategies over truncated unrolls (as learned_optimization's TruncatedES): for each task
 * and sample, z ~ N(0, I), the truncation runs from the task's state once with φ + σz and once with φ − σz, and
 * (L⁺ − L⁻)/(2σ)·z estimates the gradient of E_z[L(φ + σz)], the Gaussian-smoothed meta-objective of that
 * truncation; the state then advances with the unperturbed φ. Forward passes only, so any meta-objective works
 * (a held-out metric, say) and no tape is kept. Like tbptt it treats the truncation's start as given, so over
 * short truncations it is biased in the same way (PES is not).
 */
export class EsEstimator extends ForwardEstimator implements MetaGradientEstimator<EsState> {
  readonly type = 'es';
  readonly description: string;

  constructor(setup: EstimatorSetup, options: EsOptions) {
    super('es', setup, options);
    this.description = `meta-gradients: antithetic ES over truncations (σ ${options.sigma}, ${options.samples} pair${options.samples > 1 ? 's' : ''} per task, objective ${describeObjective(this.objective)}), tfjs forward passes`;
  }

  init(task: Task, params: NamedTensors, batchSeed: number): EsState {
    return new EsState(task, batchSeed, startRun(task, this.meta.optimizer(), params, batchSeed));
  }

  estimate(states: EsState[], length: number, seed: number): GradientEstimate {
    const { sigma, samples } = this.options;
    const variables = this.meta.variables;
    const sums = zeroSums(variables);
    const where = 'training.estimator.options';
    const metaLosses: number[] = [];
    states.forEach((state, i) => {
      for (let j = 0; j < samples; j++) {
        const z = standardNoise(variables, deriveSeed(seed, 'es', i, j));
        const values: number[] = [];
        for (const sign of [1, -1]) {
          const weights = shifted(variables, z, sign * sigma);
          try {
            const { value, next } = forward(state.task, this.meta.optimizer(weights), state.carry, length, state.batchSeed, this.objective, where);
            disposeTree(next, state.carry);
            values.push(value);
          } finally {
            disposeTree(weights);
          }
        }
        accumulate(sums, z, (values[0]! - values[1]!) / (2 * sigma));
      }
      const { value, next } = forward(state.task, this.meta.optimizer(), state.carry, length, state.batchSeed, this.objective, where);
      disposeTree(state.carry, next);
      state.carry = next;
      metaLosses.push(value);
    });
    return { grads: toTensors(variables, sums, 1 / (states.length * samples)), metaLosses };
  }

}

export function describeObjective(o: Objective): string {
  return o.metric !== null ? `held-out ${o.metric} at the truncation's end` : o.lossWeights === 'last' ? "the truncation's last loss" : "the sum of the truncation's losses";
}
