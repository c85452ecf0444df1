import type { EstimatorSetup, GradientEstimate, MetaGradientEstimator, TruncationState } from '../../contracts/estimator';
import type { Task } from '../../contracts/task';
import { deriveSeed } from '../../random';
import { disposeTree, type NamedTensors } from '../../tensor-tree';
import { disposeCarry, startRun, type Carry } from '../unroll';
import { accumulate, cloneCarry, forward, shifted, standardNoise, toTensors, zeroSums } from './common';
import { describeObjective, ForwardEstimator, type EsOptions } from './es';

/** An antithetic pair of particles: each has run every truncation so far with its own perturbations ±σz. */
interface Particle {
  pos: Carry;
  neg: Carry;
  /** Σ z over the truncations so far (PES's accumulated perturbation, in units of σ). */
  readonly xi: Record<string, Float64Array>;
}

class PesState implements TruncationState {
  constructor(
    readonly task: Task,
    readonly batchSeed: number,
    readonly particles: Particle[],
  ) {}
  get loss(): number {
    let sum = 0;
    for (const p of this.particles) sum += p.pos.loss.dataSync()[0]! + p.neg.loss.dataSync()[0]!;
    return sum / (2 * this.particles.length);
  }
  dispose(): void {
    for (const p of this.particles) {
      disposeCarry(p.pos);
      disposeCarry(p.neg);
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
    this.description = `meta-gradients: persistent ES (σ ${options.sigma}, ${options.samples} particle pair${options.samples > 1 ? 's' : ''} per task, objective ${describeObjective(this.objective)}), tfjs forward passes`;
  }

  init(task: Task, params: NamedTensors, batchSeed: number): PesState {
    const start = startRun(task, this.meta.optimizer(), params, batchSeed);
    const particles: Particle[] = [];
    try {
      for (let j = 0; j < this.options.samples; j++) particles.push({ pos: cloneCarry(start), neg: cloneCarry(start), xi: zeroSums(this.meta.variables) });
    } catch (e) {
      for (const p of particles) disposeTree([p.pos, p.neg] as never);
      throw e;
    } finally {
      disposeCarry(start);
    }
    return new PesState(task, batchSeed, particles);
  }

  estimate(states: PesState[], length: number, seed: number): GradientEstimate {
    const { sigma, samples } = this.options;
    const variables = this.meta.variables;
    const sums = zeroSums(variables);
    const metaLosses: number[] = [];
    states.forEach((state, i) => {
      let meanLoss = 0;
      state.particles.forEach((p, j) => {
        const z = standardNoise(variables, deriveSeed(seed, 'pes', i, j));
        const values: number[] = [];
        for (const sign of [1, -1]) {
          const weights = shifted(variables, z, sign * sigma);
          try {
            const carry = sign > 0 ? p.pos : p.neg;
            const { value, next } = forward(state.task, this.meta.optimizer(weights), carry, length, state.batchSeed, this.objective, 'training.estimator.options');
            disposeTree(carry, next);
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
      });
      metaLosses.push(meanLoss);
    });
    return { grads: toTensors(variables, sums, 1 / (states.length * samples)), metaLosses };
  }
}
