/**
 * The normalised-history optimizer, after ch. 3 ("Learning to Optimize With Normalized Inputs") of the thesis
 * "Learning to Optimize Deep Neural Networks" and its code (`MlpNormHistory`). Per coordinate, with the
 * window of the last k parameter values P = (θ_{t−k+1}, …, θ_t) and gradients G = (g_{t−k+1}, …, g_t),
 * oldest first:
 *
 *     hi = max P,  lo = min P,  mid = (hi + lo)/2,  range = hi − lo,  unit = range + minStep
 *     gradient input   Ĝ = G / max(‖G‖∞, 1e-30)          (‖G‖∞ = maxⱼ |gⱼ| over the window; Ĝ = 0 when G = 0)
 *     parameter input  P̂ = (P − mid) / (unit/2)           ("range", default), or P / ‖P‖∞ ("infNorm")
 *     a = W₂·[ReLU(W₁·[P̂; Ĝ; 1]); 1]                     (one hidden layer, `hidden` units, weights shared)
 *     magnitude  μ = Σᵢ softmax(a_mag)ᵢ·gridᵢ              (expectation over the `magnitudes` grid)
 *     sign       σ = p(+1) − p(−1) = tanh((a₊ − a₋)/2)      (expectation over {−1, +1} under softmax(a₋, a₊))
 *     θ_{t+1} = mid + σ·μ·unit
 *
 * Choices where the brief and thesis leave room (each a natural reading, and said so here):
 * - History start: the thesis code fills the windows by tiling the first values. We do the same: `init`
 *   fills P with θ₀, and the first update fills G with g₀. So the first range is 0 and the first step is at
 *   most max(grid)·minStep; the window then widens as the optimizer moves (steps with |σ·μ| > ½ leave it).
 * - The new value enters the window at the next update (as θ_t with its gradient g_t), so P and G stay aligned.
 * - Parameter input: the brief fixes only the gradient normalisation (by its ∞-norm, per coordinate over the
 *   window, as the thesis code does for both). For parameters we default to their position in the window in
 *   the step's own units ("range"), which is invariant to shifting and scaling θ and bounded by 1 in
 *   magnitude; its gradient is bounded by 2/minStep (minStep keeps the denominator away from 0). "infNorm"
 *   reproduces the thesis code (P / max(‖P‖∞, 1e-30)).
 * - Magnitude grid: an option; by default log-spaced (0.001 … 1, plus 2), so that both tiny relative steps
 *   (converging inside the window) and steps past its edge (widening it) are representable. The thesis code
 *   uses 10 values evenly spaced in [0, 1].
 * - Output: the thesis code's "minimum step" variant (no separate gradient-step head); the step is taken from
 *   the midpoint of the whole window (its `history_range` option off) with unit range + minStep (its
 *   `min_step_max` off).
 * - Meta-loss: the engine's (sum of losses over the unroll), not the thesis's one-step log-loss difference.
 * - Max and min have their subgradient split evenly among tied entries (tfjs's own Max gradient gives each
 *   tied entry the full gradient).
 *
 * Layout: histories feature-major `[k, N]` (N all coordinates flattened), so shifting the window is a row slice
 * and a concat. Weights: `hidden/kernel` (`[hidden, 2k + 1]`) and `output/kernel` (`[M + 2, hidden + 1]`, rows
 * 0..M−1 the magnitude logits, M the logit of −1, M + 1 that of +1).
 */
import * as tf from '@tensorflow/tfjs-core';
import { cloneNamed, type FusedKernel, type NamedTensors, type Optimizer, type OptimizerState, type StepContext, type TensorTree } from '@l2l/core';
import {
  affine,
  checkLayout,
  coordinateLayout,
  fastTanh,
  flattenCoordinates,
  initKernelWithBias,
  matMulFast,
  type WeightSource,
  rowSlice,
  splitRows,
  tidyTree,
  unflattenCoordinates,
  NamedWeightsMetaOptimizer,
} from '../common';
import { normalizedHistoryKernel } from './kernel';
import { resolveNormalizedHistoryOptions, type NormalizedHistoryOptions } from './options';

/** The optimizer's slots: the windows of parameters and gradients, each `[k, N]`, oldest row first. */
export type NormalizedHistorySlots = Readonly<{ params: tf.Tensor2D; grads: tf.Tensor2D }>;

/**
 * `[max; min]` over the rows of `x` (`[k, N]` → `[2, N]`), with the gradient of each split evenly among the
 * entries that attain it.
 */
export const maxMinRows = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
  const hi = tf.max(x, 0, true);
  const lo = tf.min(x, 0, true);
  save([x, hi, lo]);
  return {
    value: tf.concat([hi, lo], 0) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [xs, his, los] = saved as tf.Tensor2D[];
        const [dhi, dlo] = splitRows(dy, [1, 1]);
        const share = (at: tf.Tensor2D, d: tf.Tensor2D) => {
          const mask = tf.cast(tf.equal(xs, at), 'float32');
          return tf.mul(mask, tf.div(d, tf.sum(mask, 0, true)));
        };
        return [tf.add(share(his, dhi), share(los, dlo))];
      }),
  };
}) as (x: tf.Tensor2D) => tf.Tensor2D;

/** Floor of the ∞-norms that inputs are divided by (far below any float32 gradient that matters). */
const TINY = 1e-30;

/** `row` (`[1, N]`) repeated as `k` rows, as an outer product (a matmul, no broadcast across rows). */
function repeatRows(row: tf.Tensor2D, k: number): tf.Tensor2D {
  return matMulFast(tf.ones([k, 1]) as tf.Tensor2D, row);
}

/** φ₀: the MLP's hidden layer over the 2k history inputs, and its output (sign logits, magnitude logits). */
function initialNormalizedHistoryWeights(options: Readonly<NormalizedHistoryOptions>, seed: number): NamedTensors {
  const { historySize, hidden, magnitudes, initScale } = options;
  return {
    'hidden/kernel': initKernelWithBias(seed, 'hidden/kernel', hidden, 2 * historySize, initScale),
    'output/kernel': initKernelWithBias(seed, 'output/kernel', magnitudes.length + 2, hidden, initScale),
  };
}

export class NormalizedHistoryMetaOptimizer extends NamedWeightsMetaOptimizer<NormalizedHistoryOptions> {
  /** Coordinatewise (MetaOptimizer.coordinatewise): the windows, their ∞-norms, ranges and midpoints are per coordinate (over its own history), never across coordinates. */
  readonly coordinatewise = true;

  /** `options` are validated and completed with defaults; `seed` determines the initial weights. */
  constructor(options: Partial<NormalizedHistoryOptions> = {}, seed = 0) {
    const resolved = Object.freeze(resolveNormalizedHistoryOptions(options));
    super('normalized-history', resolved, initialNormalizedHistoryWeights(resolved, seed));
  }

  protected build(source: WeightSource): Optimizer {
    return new NormalizedHistoryOptimizer(this.options, source);
  }
}

class NormalizedHistoryOptimizer implements Optimizer {
  readonly name = 'normalized-history';
  /** The same updates in the wasm normalized-history kernel (./kernel.ts), where WebAssembly SIMD runs. */
  readonly fused?: FusedKernel;

  constructor(
    private readonly options: Readonly<NormalizedHistoryOptions>,
    private readonly weights: WeightSource,
  ) {
    this.fused = normalizedHistoryKernel(options, () => weights.variables);
  }

  init(params: NamedTensors): OptimizerState {
    const layout = coordinateLayout(params);
    const k = this.options.historySize;
    const own = cloneNamed(params);
    const slots = tf.tidy(() => ({
      params: tf.tile(flattenCoordinates(params, layout), [k, 1]),
      grads: tf.zeros([k, layout.total]),
    }));
    return { params: own, slots, step: 0 };
  }

  update(state: OptimizerState, grads: NamedTensors, _ctx: StepContext): OptimizerState {
    const layout = coordinateLayout(state.params);
    checkLayout(layout, grads, 'normalized-history: gradients');
    const slots = this.checkSlots(state.slots, layout.total);
    const { historySize: k, magnitudes, minStep, paramInput } = this.options;
    const m = magnitudes.length;
    const next = tidyTree(() => {
      const theta = flattenCoordinates(state.params, layout);
      const g = flattenCoordinates(grads, layout);
      const P = tf.concat([rowSlice(slots.params, 1, k - 1), theta], 0) as tf.Tensor2D;
      // The first update fills the gradient window with g₀, as the thesis code tiles its first values.
      const G = (state.step === 0 ? tf.tile(g, [k, 1]) : tf.concat([rowSlice(slots.grads, 1, k - 1), g], 0)) as tf.Tensor2D;

      const [hi, lo] = splitRows(maxMinRows(P), [1, 1]);
      const mid = tf.mul(tf.add(hi, lo), 0.5) as tf.Tensor2D;
      const unit = tf.add(tf.sub(hi, lo), minStep) as tf.Tensor2D;
      const gNorm = tf.max(tf.abs(G), 0, true) as tf.Tensor2D;
      // max(‖·‖∞, 1e-30) rather than a where on ‖·‖∞ > 0: comparisons have no gradient in tfjs, and an all-zero
      // window still comes out as zeros.
      const gIn = tf.mul(G, repeatRows(tf.reciprocal(tf.maximum(gNorm, TINY)) as tf.Tensor2D, k));
      let pIn: tf.Tensor;
      if (paramInput === 'range') {
        pIn = tf.mul(tf.sub(P, repeatRows(mid, k)), repeatRows(tf.div(2, unit) as tf.Tensor2D, k));
      } else {
        const pNorm = tf.maximum(tf.abs(hi), tf.abs(lo));
        pIn = tf.mul(P, repeatRows(tf.reciprocal(tf.maximum(pNorm, TINY)) as tf.Tensor2D, k));
      }

      const hiddenOut = tf.relu(affine(this.kernel('hidden/kernel'), tf.concat([pIn, gIn], 0) as tf.Tensor2D)) as tf.Tensor2D;
      const [magLogits, minusLogit, plusLogit] = splitRows(affine(this.kernel('output/kernel'), hiddenOut), [m, 1, 1]);
      const grid = tf.tensor2d(magnitudes, [m, 1]);
      const magnitude = tf.reshape(matMulFast(tf.softmax(tf.transpose(magLogits)) as tf.Tensor2D, grid), [1, layout.total]);
      const sign = fastTanh(tf.mul(tf.sub(plusLogit, minusLogit), 0.5));
      const thetaNext = tf.add(mid, tf.mul(tf.mul(sign, magnitude), unit));
      return { params: unflattenCoordinates(thetaNext, layout), slots: { params: P, grads: G } };
    });
    return { params: next.params, slots: next.slots, step: state.step + 1 };
  }

  private kernel(name: string): tf.Tensor2D {
    return this.weights.get(name) as tf.Tensor as tf.Tensor2D;
  }

  private checkSlots(slots: TensorTree, n: number): NormalizedHistorySlots {
    const s = slots as unknown as Record<string, unknown>;
    const k = this.options.historySize;
    for (const key of ['params', 'grads']) {
      const t = s?.[key];
      if (!(t instanceof tf.Tensor) || t.rank !== 2 || t.shape[0] !== k || t.shape[1] !== n) {
        throw new Error(
          `normalized-history: state slot ${key} must be a [${k}, ${n}] tensor (the last ${k} values of each coordinate)` +
            (t instanceof tf.Tensor ? `, got [${t.shape.join(', ')}]` : ''),
        );
      }
    }
    return slots as unknown as NormalizedHistorySlots;
  }
}
