import type { ComponentConfig } from '../contracts/json';

/*
 * The engine's meta-training options: plain values it receives (config/experiment.ts describes them as the
 * experiment file's `training` section, with defaults, and resolves them at the edge).
 */

/** Meta-training options (MetaTrainer). */
export interface TrainingOptions {
  epochs: number;
  episodesPerEpoch: number;
  steps: number;
  unroll: number;
  lossWeights: 'uniform' | 'last';
  secondDerivatives: boolean;
  learningRate: number;
  gradClipNorm: number | null;
  validateEvery: number;
  validationTasks: number;
  nonFinite: 'skip' | 'stop';
  /** Random per-coordinate scaling of training tasks, f(c ⊙ θ) with c = exp(U(−r, r)) (engine/tricks.ts); 0 or absent: off. */
  randomScale?: number;
  /** Add a random convex quadratic over 20 extra coordinates to training tasks (engine/tricks.ts); absent: off. */
  convexCombination?: boolean;
  /** Gradient checkpointing: steps per recomputed segment of an unroll (engine/meta-gradient.ts); null, 0 or absent: off. */
  checkpointEvery?: number | null;
  /** Worker threads, each with a contiguous chunk of the coordinates (engine/parallel); 0 or absent: none. */
  workers?: number;
  /** How first-order meta-gradients are computed: the meta-optimizer's fused kernel or the tfjs tape (engine/fused.ts); absent: auto. */
  kernel?: 'auto' | 'tfjs' | 'fused';
  /** The meta-gradient estimator, `{type, options}` (engine/estimators): tbptt (absent), es, pes, or a plugin's. */
  estimator?: ComponentConfig;
  /** Tasks per outer step, each with its own truncation state; absent: 1. */
  tasksPerStep?: number;
  /** The outer optimizer of φ, a registered optimizer `{type, options}`; absent: Adam with `learningRate`. */
  outerOptimizer?: ComponentConfig;
  /** The outer learning rate's schedule `{type, options}` (engine/schedules.ts, or a plugin's); absent: constant. */
  learningRateSchedule?: ComponentConfig;
}


/** Training options that contradict each other (the schema checks each alone), in plain words naming the fields. */
export function trainingProblems(t: TrainingOptions): string[] {
  const problems: string[] = [];
  if (t.unroll > t.steps) {
    problems.push(`training.unroll (${t.unroll}) must not exceed training.steps (${t.steps})`);
  } else if (t.steps % t.unroll !== 0) {
    problems.push(`training.unroll (${t.unroll}) must divide training.steps (${t.steps}) so that every unroll has the same length; try ${divisorNear(t.steps, t.unroll)}`);
  }
  if (t.kernel === 'fused' && t.secondDerivatives) {
    problems.push('training.kernel "fused" computes first-order meta-gradients only: set training.secondDerivatives to false, or training.kernel to "auto" or "tfjs"');
  }
  if ((t.workers ?? 0) > 0 && t.secondDerivatives) {
    problems.push(`training.workers (${t.workers}) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0`);
  }
  return problems;
}

/** The divisor of `n` closest to `d` (a suggestion for training.unroll). */
function divisorNear(n: number, d: number): number {
  let best = 1;
  for (let k = 1; k * k <= n; k++) {
    for (const c of n % k === 0 ? [k, n / k] : []) if (Math.abs(c - d) < Math.abs(best - d)) best = c;
  }
  return best;
}

