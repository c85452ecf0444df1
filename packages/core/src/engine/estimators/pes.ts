import type { EstimatorSetup, GradientEstimate, MetaGradientEstimator, TruncationState } from '../../contracts/estimator';
import type { Task } from '../../contracts/task';
import { deriveSeed } from '../../random';
import { disposeTree, type NamedTensors } from '../../tensor-tree';
import { accumulate, shifted, standardNoise, toTensors, zeroSums } from './common';
import { describeObjective, ForwardEstimator, type EsOptions } from './es';
import type { ForwardPath } from './forward-path';

/** An antithetic pair of particles: each has run every truncation so far with its own perturbations ±σz. */
interface Particle {
  pos: unknown;
  neg: unknown;
  /** Σ z over the truncations so far (PES's accumulated perturbation, in units of σ). */
  readonly xi: Record<string, Float64Array>;
}

class PesState implements TruncationState {
  constructor(
    readonly task: Task,
    readonly batchSeed: number,
    private readonly path: ForwardPath<unknown>,
    readonly particles: Particle[],
  ) {}
  get loss(): number {
    let sum = 0;
    for (const p of this.particles) sum += this.path.loss(p.pos) + this.path.loss(p.neg);
    return sum / (2 * this.particles.length);
  }
  dispose(): void {
    for (const p of this.particles) {
      this.path.dispose(p.pos);
      this.path.dispose(p.neg);
    }
    this.particles.length = 0;
  }
}

/**
 * Persistent evolution strategies (Vicol, Metz & Sohl-Dickstein 2021, as learned_optimization's TruncatedPES):
 * each task keeps antithetic particles that run every truncation of the episode with their own fresh
 * perturbation ±σz_k, and the estimate for truncation k is (L⁺_k − L⁻_k)/(2σ)·Σ_{j≤k} z_j. The accumulated
 * perturbation accounts for how earlier truncations' φ moved the state this one starts from, so over an
 * episode the estimates add up, in expectation, to the gradient of the whole unroll's Gaussian-smoothed
 * meta-objective: no truncation bias, at the price of variance that grows with the number of truncations.
 */
export class PesEstimator extends ForwardEstimator implements MetaGradientEstimator<PesState> {
  readonly type = 'pes';
  readonly description: string;

  constructor(setup: EstimatorSetup, options: EsOptions) {
    super('pes', setup, options);
    this.description = `meta-gradients: persistent ES (σ ${options.sigma}, ${options.samples} particle pair${options.samples > 1 ? 's' : ''} per task, objective ${describeObjective(this.objective)}), ${this.path.description}`;
  }

  init(task: Task, params: NamedTensors, batchSeed: number): PesState {
    const { path } = this;
    const start = this.start(task, params, batchSeed);
    // Two copies of the start per particle pair (pos, neg), freed together if one fails.
    const runs: unknown[] = [];
    try {
      for (let j = 0; j < 2 * this.options.samples; j++) runs.push(path.clone(start));
    } catch (e) {
      for (const r of runs) path.dispose(r);
      throw e;
    } finally {
      path.dispose(start);
    }
    const particles = Array.from({ length: this.options.samples }, (_, j): Particle => ({ pos: runs[2 * j], neg: runs[2 * j + 1], xi: zeroSums(this.meta.variables) }));
    return new PesState(task, batchSeed, path, particles);
  }

  async estimate(states: PesState[], length: number, seed: number, firstTask = 0): Promise<GradientEstimate> {
    const { sigma, samples } = this.options;
    const variables = this.meta.variables;
    const sums = zeroSums(variables);
    const metaLosses: number[] = [];
    for (const [i, state] of states.entries()) {
      let meanLoss = 0;
      for (const [j, p] of state.particles.entries()) {
        const z = standardNoise(variables, deriveSeed(seed, 'pes', firstTask + i, j));
        const values: number[] = [];
        for (const sign of [1, -1]) {
          const weights = shifted(variables, z, sign * sigma);
          try {
            const run = sign > 0 ? p.pos : p.neg;
            const { value, next } = await this.path.forward(state.task, run, weights, length, state.batchSeed, this.objective, 'training.estimator.options');
            this.path.discard(run, next);
            if (sign > 0) p.pos = next;
            else p.neg = next;
            values.push(value);
          } finally {
            disposeTree(weights);
          }
        }
        accumulate(p.xi, z, 1);
        accumulate(sums, p.xi, (values[0]! - values[1]!) / (2 * sigma));
        meanLoss += (values[0]! + values[1]!) / 2 / samples;
      }
      metaLosses.push(meanLoss);
    }
    return { grads: toTensors(variables, sums, 1 / (states.length * samples)), metaLosses };
  }
}
