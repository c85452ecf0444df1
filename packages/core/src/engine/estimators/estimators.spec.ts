import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../backend';
import type { EstimatorSetup, MetaGradientEstimator, TruncationState } from '../../contracts/estimator';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import { isUserError } from '../../errors';
import { deriveSeed } from '../../random';
import { LearnedRate, QuadraticFamily, TinyMeta } from '../engine.fixture';
import { builtinEstimator } from '.';
import { EsEstimator } from './es';
import { PesEstimator } from './pes';
import { TbpttEstimator } from './tbptt';

/*
 * Statistical checks on a problem whose answer is known in closed form: f(θ) = θ²/2 from θ₀ = 1, optimised by
 * θ ← θ − α·f'(θ) with a learned α (LearnedRate). Step t of a run at rate α has loss (1 − α)^{2t}/2, so every
 * meta-objective is a polynomial in α and its Gaussian smoothing follows from the normal moments
 * E[(c + s·z)^n] = Σ_{k even} C(n, k) c^{n−k} s^k (k − 1)!!.
 */

beforeAll(async () => {
  await useBackend('cpu');
});

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}
/** E[(c + s·z)^n], z ~ N(0, 1). */
function moment(c: number, s: number, n: number): number {
  let sum = 0;
  let doubleFactorial = 1; // (k − 1)!! for k = 0, 2, 4, …
  for (let k = 0; k <= n; k += 2) {
    if (k > 0) doubleFactorial *= k - 1;
    sum += binomial(n, k) * c ** (n - k) * s ** k * doubleFactorial;
  }
  return sum;
}
/** d/dα of E[(1 − α − σz)^n] = −n·E[(1 − α − σz)^{n−1}]. */
const dMoment = (alpha: number, sigma: number, n: number) => (n === 0 ? 0 : -n * moment(1 - alpha, sigma, n - 1));

/** ∇_α E_z[Σ_{t=1..T} f(θ_t(α + σz))]: full-unroll ES, one perturbation for the whole run. */
function fullSmoothedGradient(alpha: number, sigma: number, T: number): number {
  let g = 0;
  for (let t = 1; t <= T; t++) g += 0.5 * dMoment(alpha, sigma, 2 * t);
  return g;
}

/**
 * ∇_α E[Σ_t f(θ_t)] when truncation k of K steps runs at α + σz_k with independent z_k: the objective PES is
 * unbiased for (Vicol et al. 2021); it tends to the full-unroll one as σ → 0.
 */
function perTruncationSmoothedGradient(alpha: number, sigma: number, T: number, K: number): number {
  const E = (n: number) => moment(1 - alpha, sigma, n);
  let g = 0;
  for (let k = 0; k < T / K; k++) {
    for (let j = 1; j <= K; j++) {
      const powers = [...Array(k).fill(2 * K), 2 * j] as number[];
      powers.forEach((_, i) => {
        g += 0.5 * powers.reduce((p, n, i2) => p * (i2 === i ? dMoment(alpha, sigma, n) : E(n)), 1);
      });
    }
  }
  return g;
}

function meanAndError(xs: number[]): { mean: number; se: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, se: Math.sqrt(variance / xs.length) };
}

const setupOf = (meta: MetaOptimizer, over: Partial<EstimatorSetup['training']> = {}): EstimatorSetup => ({
  meta,
  training: { lossWeights: 'uniform', secondDerivatives: false, tasksPerStep: 1, ...over },
});

/** The estimate of each of `runs` episodes of T steps in truncations of K, summed over the episode's truncations. */
async function episodeEstimates(estimator: MetaGradientEstimator, runs: number, T: number, K: number, seed: number): Promise<number[]> {
  const family = new QuadraticFamily(1);
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const task = family.build(family.sample(r, 'train'));
    const state: TruncationState = estimator.init(task, task.initParams(0), 0);
    let sum = 0;
    for (let k = 0; k < T / K; k++) {
      const { grads } = await estimator.estimate([state], K, deriveSeed(seed, r, k));
      sum += grads.lr!.dataSync()[0]!;
      tf.dispose(Object.values(grads));
    }
    state.dispose();
    task.dispose();
    out.push(sum);
  }
  return out;
}

describe('ES and PES on a problem with a known answer', () => {
  const alpha = 0.3;

  it("ES's estimate averages to the gradient of the Gaussian-smoothed meta-objective", async () => {
    // α and σ keep 1 − α ∓ σz inside (−1, 1) for all but extreme z: the estimate's tails stay light enough
    // for its standard error to mean something (at α = 0.3, σ = 0.2 one z in 600 moves the mean by 5 errors).
    const rate = 0.6;
    const meta = new LearnedRate(rate);
    const sigma = 0.2;
    const T = 3;
    const before = tf.memory().numTensors;
    const es = new EsEstimator(setupOf(meta), { sigma, samples: 1, metric: null });
    // Seeded; over seeds 0–39 the mean lies within 3.5 standard errors 39 times (seed 1's z have sample variance 0.83).
    const { mean, se } = meanAndError(await episodeEstimates(es, 600, T, T, 0));
    const smoothed = fullSmoothedGradient(rate, sigma, T);
    expect(Math.abs(mean - smoothed)).toBeLessThan(3.5 * se);
    expect(se).toBeLessThan(0.2 * Math.abs(smoothed)); // a check with some resolution, not a wide band
    expect(tf.memory().numTensors).toBe(before);
    // Perturbed copies never touched the live weights.
    expect(meta.variables.lr!.dataSync()[0]).toBeCloseTo(rate, 7);
    meta.dispose();
  });

  it('over consecutive truncations PES averages to the whole unroll\'s smoothed gradient; truncated ES is biased there', async () => {
    const meta = new LearnedRate(alpha);
    const sigma = 0.03;
    const [T, K, runs] = [8, 2, 400];
    const before = tf.memory().numTensors;
    const pes = meanAndError(await episodeEstimates(new PesEstimator(setupOf(meta), { sigma, samples: 1, metric: null }), runs, T, K, 2));
    const es = meanAndError(await episodeEstimates(new EsEstimator(setupOf(meta), { sigma, samples: 1, metric: null }), runs, T, K, 2));
    const target = perTruncationSmoothedGradient(alpha, sigma, T, K);
    const fullEs = fullSmoothedGradient(alpha, sigma, T);
    expect(Math.abs(target - fullEs)).toBeLessThan(0.05 * Math.abs(fullEs)); // σ small: the two smoothings nearly agree
    expect(Math.abs(pes.mean - target)).toBeLessThan(3.5 * pes.se);
    expect(Math.abs(pes.mean - fullEs)).toBeLessThan(3.5 * pes.se);
    // Truncated ES ignores how α moved the state each truncation starts from: many standard errors off.
    expect(Math.abs(es.mean - fullEs)).toBeGreaterThan(5 * es.se);
    expect(es.mean).toBeGreaterThan(fullEs); // it sees less of the benefit of a larger rate
    // tbptt shares that bias: its (exact) truncated gradient is near truncated ES's mean.
    const tbptt = meanAndError(await episodeEstimates(new TbpttEstimator(setupOf(meta)), 1, T, K, 0));
    expect(Math.abs(tbptt.mean - es.mean)).toBeLessThan(3.5 * es.se);
    expect(tf.memory().numTensors).toBe(before);
    meta.dispose();
  });

  it('averages over a population and over samples: tasksPerStep and samples reduce the spread', async () => {
    const meta = new LearnedRate(0.6);
    const family = new QuadraticFamily(1);
    const spread = async (samples: number, tasks: number) => {
      const es = new EsEstimator(setupOf(meta, { tasksPerStep: tasks }), { sigma: 0.05, samples, metric: null });
      const xs: number[] = [];
      for (let r = 0; r < 60; r++) {
        const built = Array.from({ length: tasks }, (_, i) => family.build(family.sample(i, 'train')));
        const states = built.map((t) => es.init(t, t.initParams(0), 0));
        const { grads, metaLosses } = await es.estimate(states, 4, r);
        expect(metaLosses).toHaveLength(tasks);
        xs.push(grads.lr!.dataSync()[0]!);
        tf.dispose(Object.values(grads));
        states.forEach((s) => s.dispose());
      }
      return meanAndError(xs).se;
    };
    const one = await spread(1, 1);
    // Four independent pairs halve the standard deviation; 0.75 leaves room for the spread's own noise.
    expect(await spread(4, 1)).toBeLessThan(0.75 * one);
    expect(await spread(1, 4)).toBeLessThan(0.75 * one);
    meta.dispose();
  });
});

describe('estimator setup', () => {
  it('builds the built-ins from {type, options} with defaults, and refuses unknown types and options', () => {
    const meta = new LearnedRate();
    const es = builtinEstimator({ type: 'es' }).create(setupOf(meta)) as EsEstimator;
    expect(es.options).toEqual({ sigma: 0.01, samples: 4, metric: null });
    expect(builtinEstimator(undefined).create(setupOf(meta)).type).toBe('tbptt');
    expect(() => builtinEstimator({ type: 'nope' })).toThrow(/training\.estimator: unknown estimator type "nope"/);
    expect(() => builtinEstimator({ type: 'pes', options: { sigma: -1 } })).toThrow(/sigma/);
    meta.dispose();
  });

  it('ES and PES refuse what they cannot use, naming the field: derivatives, checkpoints, and threads or "fused" with no kernel', () => {
    const meta = new LearnedRate();
    for (const [over, field] of [
      [{ secondDerivatives: true }, /training\.secondDerivatives \(ES needs no derivatives\)/],
      [{ workers: 2 }, /runs its forward passes on tfjs here \(meta-optimizer "learned-rate" has no fused kernel\), so training\.workers \(2\) does not apply/],
      [{ kernel: 'fused' as const }, /training\.kernel is "fused", but meta-optimizer "learned-rate" has no fused kernel/],
      [{ checkpointEvery: 3 }, /training\.checkpointEvery \(3\)/],
    ] as const) {
      let error: unknown;
      try {
        new PesEstimator(setupOf(meta, over), { sigma: 0.1, samples: 1, metric: null });
      } catch (e) {
        error = e;
      }
      expect(isUserError(error)).toBe(true);
      expect((error as Error).message).toMatch(field);
    }
    meta.dispose();
  });

  it('a held-out metric as the meta-objective: fullLoss works, a missing metric is a UserError', async () => {
    const meta = new LearnedRate(0.3);
    const family = new QuadraticFamily(1);
    const task = family.build(family.sample(0, 'train'));
    const byMetric = new EsEstimator(setupOf(meta), { sigma: 0.05, samples: 1, metric: 'fullLoss' });
    const state = byMetric.init(task, task.initParams(0), 0);
    const { grads, metaLosses } = await byMetric.estimate([state], 3, 0);
    // The end point after 3 steps: (1 − 0.3)^6 / 2.
    expect(metaLosses[0]).toBeCloseTo(0.7 ** 6 / 2, 5);
    tf.dispose(Object.values(grads));
    state.dispose();
    const missing = new EsEstimator(setupOf(meta), { sigma: 0.05, samples: 1, metric: 'testAccuracy' });
    const s2 = missing.init(task, task.initParams(0), 0);
    await expect(missing.estimate([s2], 3, 0)).rejects.toThrow(/metric is "testAccuracy", but tasks of family "quadratic-fixture" report no metrics/);
    s2.dispose();
    task.dispose();
    meta.dispose();
  });

  it('perturbed optimizers read the given weights: φ + δ on TinyMeta equals setting φ + δ', () => {
    const meta = new TinyMeta();
    const shifted = { a: tf.add(meta.variables.a!, 0.5), b: tf.add(meta.variables.b!, -0.2) };
    const params = { x: tf.tensor1d([0.3, -0.1]) };
    const grads = { x: tf.tensor1d([1, -2]) };
    const run = (opt: ReturnType<MetaOptimizer['optimizer']>) => {
      const s0 = opt.init(params);
      const s1 = opt.update(s0, grads, { step: 0, training: true });
      const out = Array.from(s1.params.x!.dataSync());
      tf.dispose([...Object.values(s0.params), ...Object.values(s1.params), ...Object.values(s0.slots as object), ...Object.values(s1.slots as object)]);
      return out;
    };
    const given = run(meta.optimizer(shifted));
    const live = run(meta.optimizer());
    meta.setWeights(shifted);
    const set = run(meta.optimizer());
    expect(given).toEqual(set);
    expect(given).not.toEqual(live);
    tf.dispose([...Object.values(shifted), params.x, grads.x]);
    meta.dispose();
  });
});
