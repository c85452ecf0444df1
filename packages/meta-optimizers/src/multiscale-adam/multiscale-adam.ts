import * as tf from '@tensorflow/tfjs-core';
import { cloneNamed, type FusedKernel, type NamedTensors, type Optimizer, type OptimizerState, type StepContext, type TensorTree } from '@l2l/core';
import { Rng } from '@l2l/core';
import {
  affine,
  checkLayout,
  coordinateLayout,
  flattenCoordinates,
  initKernelWithBias,
  lstmCell,
  matMulFast,
  type WeightSource,
  tidyTree,
  truncatedNormals,
  unflattenCoordinates,
  NamedWeightsMetaOptimizer,
} from '../common';
import { MultiscaleAdamLinearKernel } from './linear-kernel';
import { multiscaleAdamMlpKernel } from './mlp-kernel';
import { lstmStackKernel } from '../kernels/lstm-stack-kernel';
import { resolveMultiscaleAdamOptions, type MultiscaleAdamOptions } from './options';

/** The optimizer's slots: Adam moments `m`, `v` (`[k, N]`, one row per (β1, β2) pair) and, for "rnn", the LSTM state. */
export type MultiscaleAdamSlots = Readonly<{ m: tf.Tensor2D; v: tf.Tensor2D; lstm?: { h: tf.Tensor2D; c: tf.Tensor2D } }>;

/** φ₀ of the chosen combiner, plus the log learning rate when it is learned. */
function initialMultiscaleAdamWeights(options: Readonly<MultiscaleAdamOptions>, seed: number): NamedTensors {
  const { betas, combiner, hidden, initScale, learnLearningRate, learningRate } = options;
  const k = betas.length;
  const initial: NamedTensors = {};
  if (combiner === 'linear') {
    initial['combiner/logits'] = tf.tensor2d(truncatedNormals(Rng.from(seed, 'combiner/logits'), k, 0.1 * initScale), [1, k]);
  } else if (combiner === 'mlp') {
    initial['mlp/hidden/kernel'] = initKernelWithBias(seed, 'mlp/hidden/kernel', hidden, k, initScale);
    initial['mlp/output/kernel'] = initKernelWithBias(seed, 'mlp/output/kernel', k, hidden, 0.1 * initScale);
  } else {
    // Gate rows: input, forget (bias 1: keep the cell state at the start), cell candidate, output.
    initial['lstm/kernel'] = initKernelWithBias(seed, 'lstm/kernel', 4 * hidden, k + hidden, initScale, (r) => (r >= hidden && r < 2 * hidden ? 1 : 0));
    initial['output/kernel'] = initKernelWithBias(seed, 'output/kernel', k, hidden, 0.1 * initScale);
  }
  if (learnLearningRate) initial['lr/log'] = tf.fill([1, 1], Math.log(learningRate));
  return initial;
}

/**
 * Multiscale Adam, after ch. 4 of the thesis "Learning to Optimize Deep Neural Networks": Adam run
 * at k timescales at once, its k candidate updates combined by learned weights. For every coordinate with
 * gradient g at step t (t = 1, 2, ...) and each pair i = 1..k:
 *
 *     mᵢ ← β1ᵢ·mᵢ + (1 − β1ᵢ)·g,   vᵢ ← β2ᵢ·vᵢ + (1 − β2ᵢ)·g²
 *     uᵢ = m̂ᵢ / (√v̂ᵢ + ε)  with  m̂ᵢ = mᵢ / (1 − β1ᵢ^t),  v̂ᵢ = vᵢ / (1 − β2ᵢ^t)      (Adam's update direction)
 *     θ ← θ − η · Σᵢ wᵢ·uᵢ,   w = softmax(ℓ)  (weights positive, summing to 1)
 *
 * The combiner decides the logits ℓ:
 * - "linear": ℓ is one learned vector (`combiner/logits`, `[1, k]`), shared by every coordinate: a learned
 *   convex mixture of the k Adams.
 * - "mlp": per coordinate, ℓ = W₂·[ReLU(W₁·[u; 1]); 1] from the k candidates u (`mlp/hidden/kernel` `[H, k+1]`,
 *   `mlp/output/kernel` `[k, H+1]`): the weighting can depend on how the timescales agree.
 * - "rnn": per coordinate, an LSTM reads u each step (`lstm/kernel` `[4H, k+H+1]`, state in the slots) and
 *   ℓ = W_out·[h; 1] (`output/kernel` `[k, H+1]`): the weighting can also depend on the history.
 * The MLP and LSTM see only the candidates (not the raw gradient), so, like Adam, the optimizer is invariant
 * to rescaling the gradient (up to ε). The learning rate η is a weight (`lr/log`, its logarithm, so it stays
 * positive) when learnLearningRate is on, else the fixed learningRate.
 *
 * Layout: moments and hidden states feature-major (`[k, N]`, `[H, N]`), N all coordinates flattened. The
 * moment updates are small matmuls (diag(β)·M + (1 − β)·g), which avoid broadcasting a column across N.
 */
export class MultiscaleAdamMetaOptimizer extends NamedWeightsMetaOptimizer<MultiscaleAdamOptions> {
  /** Coordinatewise (MetaOptimizer.coordinatewise): moments and the combiner (shared logits, or an MLP/LSTM per coordinate) act per coordinate; the softmax runs over timescales, not coordinates. */
  readonly coordinatewise = true;

  /** `options` are validated and completed with defaults; `seed` determines the initial weights. */
  constructor(options: Partial<MultiscaleAdamOptions> = {}, seed = 0) {
    const resolved = Object.freeze(resolveMultiscaleAdamOptions(options));
    super('multiscale-adam', resolved, initialMultiscaleAdamWeights(resolved, seed));
  }

  protected build(source: WeightSource): Optimizer {
    return new MultiscaleAdamOptimizer(this.options, source);
  }
}

/** `diag(values)` as a `[k, k]` tensor. */
function diag(values: number[]): tf.Tensor2D {
  const k = values.length;
  const out = new Float32Array(k * k);
  values.forEach((v, i) => (out[i * k + i] = v));
  return tf.tensor2d(out, [k, k]);
}

/** Softmax over the rows of a feature-major `[k, N]` tensor (each column sums to 1). */
function softmaxRows(logits: tf.Tensor2D): tf.Tensor2D {
  return tf.transpose(tf.softmax(tf.transpose(logits))) as tf.Tensor2D;
}

/** The optimizer a `MultiscaleAdamMetaOptimizer` defines; its updates are ops on the meta-optimizer's variables. */
class MultiscaleAdamOptimizer implements Optimizer {
  readonly name = 'multiscale-adam';
  /**
   * The same updates in a fused kernel: linear-kernel.ts (linear combiner), mlp-kernel.ts (MLP), and the LSTM
   * stack's kernel with multiscale features and a softmax head (RNN).
   */
  readonly fused?: FusedKernel;

  constructor(
    private readonly options: Readonly<MultiscaleAdamOptions>,
    private readonly weights: WeightSource,
  ) {
    const betas = options.betas.map((b) => [b[0]!, b[1]!] as const);
    const fixedLr = options.learnLearningRate ? null : options.learningRate;
    if (options.combiner === 'linear') this.fused = new MultiscaleAdamLinearKernel(betas, options.epsilon, () => weights.variables, fixedLr);
    else if (options.combiner === 'mlp') this.fused = multiscaleAdamMlpKernel(betas, options.epsilon, options.hidden, () => weights.variables, fixedLr);
    else {
      this.fused = lstmStackKernel(
        {
          features: 'multiscale',
          betas,
          epsilon: options.epsilon,
          inputUnits: 0,
          hidden: options.hidden,
          layers: 1,
          outputTanh: false,
          outputSoftmax: true,
          scale: -(fixedLr ?? 0),
          ...(fixedLr === null && { scaleWeight: 'lr/log' }),
          weightNames: ['lstm/kernel', 'output/kernel'],
        },
        () => weights.variables,
      );
    }
  }

  init(params: NamedTensors): OptimizerState {
    const n = coordinateLayout(params).total;
    const k = this.options.betas.length;
    const slots: Record<string, TensorTree> = { m: tf.zeros([k, n]), v: tf.zeros([k, n]) };
    if (this.options.combiner === 'rnn') slots.lstm = { h: tf.zeros([this.options.hidden, n]), c: tf.zeros([this.options.hidden, n]) };
    return { params: cloneNamed(params), slots, step: 0 };
  }

  update(state: OptimizerState, grads: NamedTensors, _ctx: StepContext): OptimizerState {
    const layout = coordinateLayout(state.params);
    checkLayout(layout, grads, 'multiscale-adam: gradients');
    const slots = this.checkSlots(state.slots, layout.total);
    const { betas, combiner, epsilon, learnLearningRate, learningRate } = this.options;
    const k = betas.length;
    const t = state.step + 1;
    const next = tidyTree(() => {
      const g = flattenCoordinates(grads, layout);
      const b1 = betas.map((b) => b[0]);
      const b2 = betas.map((b) => b[1]);
      const column = (xs: number[]) => tf.tensor2d(xs, [k, 1]);
      const m = tf.add(tf.matMul(diag(b1), slots.m), tf.matMul(column(b1.map((b) => 1 - b)), g)) as tf.Tensor2D;
      const v = tf.add(tf.matMul(diag(b2), slots.v), tf.matMul(column(b2.map((b) => 1 - b)), tf.square(g))) as tf.Tensor2D;
      const mHat = tf.matMul(diag(b1.map((b) => 1 / (1 - b ** t))), m);
      const vHat = tf.matMul(diag(b2.map((b) => 1 / (1 - b ** t))), v);
      const u = tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)) as tf.Tensor2D;
      const newSlots: Record<string, TensorTree> = { m, v };
      let direction: tf.Tensor2D;
      if (combiner === 'linear') {
        direction = matMulFast(tf.softmax(this.kernel('combiner/logits')) as tf.Tensor2D, u);
      } else {
        let logits: tf.Tensor2D;
        if (combiner === 'mlp') {
          logits = affine(this.kernel('mlp/output/kernel'), tf.relu(affine(this.kernel('mlp/hidden/kernel'), u)));
        } else {
          const cell = lstmCell(this.kernel('lstm/kernel'), u, slots.lstm!.h, slots.lstm!.c);
          newSlots.lstm = cell;
          logits = affine(this.kernel('output/kernel'), cell.h);
        }
        // Σᵢ wᵢ uᵢ per column as ones[1, k] · (w ⊙ u): a matmul instead of a reduction across rows.
        direction = matMulFast(tf.ones([1, k]) as tf.Tensor2D, tf.mul(softmaxRows(logits), u) as tf.Tensor2D);
      }
      const lr = learnLearningRate ? tf.reshape(tf.exp(this.kernel('lr/log')), []) : tf.scalar(learningRate);
      const deltas = unflattenCoordinates(tf.mul(direction, tf.neg(lr)), layout);
      const params: NamedTensors = {};
      for (const name of layout.names) params[name] = tf.add(state.params[name]!, deltas[name]!);
      return { params, slots: newSlots };
    });
    return { params: next.params, slots: next.slots, step: t };
  }

  private kernel(name: string): tf.Tensor2D {
    return this.weights.get(name) as tf.Tensor as tf.Tensor2D;
  }

  private checkSlots(slots: TensorTree, n: number): MultiscaleAdamSlots {
    const s = slots as unknown as Record<string, unknown> & { lstm?: Record<string, unknown> };
    const check = (t: unknown, rows: number, what: string) => {
      if (!(t instanceof tf.Tensor) || t.rank !== 2 || t.shape[0] !== rows || t.shape[1] !== n) {
        throw new Error(
          `multiscale-adam: state slot ${what} must be a [${rows}, ${n}] tensor (one column per coordinate)` +
            (t instanceof tf.Tensor ? `, got [${t.shape.join(', ')}]` : ''),
        );
      }
    };
    const k = this.options.betas.length;
    check(s?.m, k, 'm');
    check(s?.v, k, 'v');
    if (this.options.combiner === 'rnn') {
      check(s?.lstm?.h, this.options.hidden, 'lstm.h');
      check(s?.lstm?.c, this.options.hidden, 'lstm.c');
    }
    return slots as unknown as MultiscaleAdamSlots;
  }
}
