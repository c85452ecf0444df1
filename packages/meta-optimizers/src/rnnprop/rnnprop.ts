import * as tf from '@tensorflow/tfjs-core';
import { cloneNamed, type FusedKernel, type NamedTensors, type Optimizer, type OptimizerState, type StepContext, type TensorTree } from '@l2l/core';
import {
  affine,
  checkLayout,
  coordinateLayout,
  fastTanh,
  flattenCoordinates,
  initKernelWithBias,
  initLstmStack,
  lstmCell,
  lstmStackGpuStep,
  lstmStackUpdateOnGpu,
  lstmStackUpdateOnGpuHere,
  type LstmLayerState,
  lstmLayerName,
  zeroLstmState,
  type WeightSource,
  tidyTree,
  unflattenCoordinates,
  NamedWeightsMetaOptimizer,
} from '../common';
import { lstmStackKernel, lstmStackWeightNames } from '../kernels';
import { resolveRnnpropOptions, type RnnpropOptions } from './options';

/** One LSTM layer's state (the same as the LSTM optimizer's). */
export type RnnpropLayerState = LstmLayerState;

/** The optimizer's slots: the running moments `m`, `v` (`[1, N]`) and `{ lstm0: {h, c}, lstm1: ... }`. */
export type RnnpropSlots = Readonly<{ m: tf.Tensor2D; v: tf.Tensor2D } & Record<string, RnnpropLayerState | tf.Tensor2D>>;


/** φ₀ of RNNprop: the ELU input layer, the LSTM layers (forget gate at `forgetBias`), the output layer. */
function initialRnnpropWeights(options: Readonly<RnnpropOptions>, seed: number): NamedTensors {
  const { inputUnits, hidden, initScale } = options;
  return {
    'input/kernel': initKernelWithBias(seed, 'input/kernel', inputUnits, 2, initScale),
    ...initLstmStack(seed, inputUnits, options),
    'output/kernel': initKernelWithBias(seed, 'output/kernel', 1, hidden, initScale),
  };
}

/**
 * RNNprop, from Lv, Jiang & Li 2017, "Learning Gradient Descent: Better Generalization and Longer Horizons".
 * For every coordinate, with gradient g at step t (t = 1, 2, ...):
 *
 *     m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²,   m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
 *     x = ELU(W_in · [g / (√v̂ + ε); m̂ / (√v̂ + ε); 1])          (inputUnits features)
 *     h = LSTM_layers(x)                                          (weights shared by all coordinates)
 *     θ ← θ − α·tanh(W_out · [h_top; 1])
 *
 * The inputs are invariant to rescaling the gradient and bounded, which is what lets RNNprop generalise
 * across optimizees; the tanh bounds every step by α. The sign follows the authors' code (`x -= tanh(a)·lr`).
 * The step counter t is the state's `step` + 1; m and v start at 0 in the state's slots.
 *
 * Layout as in `LstmMetaOptimizer`: all parameter tensors flattened onto N coordinates, per-coordinate tensors
 * feature-major `[features, N]`, biases folded into kernels. Weights: `input/kernel` (`[inputUnits, 3]`),
 * `lstm{l}/kernel` (`[4·hidden, in + hidden + 1]`, gate rows input, forget, cell, output) and `output/kernel`
 * (`[1, hidden + 1]`).
 */
export class RnnpropMetaOptimizer extends NamedWeightsMetaOptimizer<RnnpropOptions> {
  /** Coordinatewise (MetaOptimizer.coordinatewise): moments, inputs and LSTM state are per coordinate; nothing is normalised across coordinates. */
  readonly coordinatewise = true;

  /** `options` are validated and completed with defaults; `seed` determines the initial weights. */
  constructor(options: Partial<RnnpropOptions> = {}, seed = 0) {
    const resolved = Object.freeze(resolveRnnpropOptions(options));
    super('rnnprop', resolved, initialRnnpropWeights(resolved, seed));
  }

  protected build(source: WeightSource): Optimizer {
    return new RnnpropOptimizer(this.options, source);
  }
}

/** The optimizer an `RnnpropMetaOptimizer` defines; its updates are ops on the meta-optimizer's variables. */
class RnnpropOptimizer implements Optimizer {
  readonly name = 'rnnprop';
  /** The same updates in the wasm lstm-stack kernel (kernels/), where WebAssembly SIMD runs. */
  readonly fused?: FusedKernel;
  /** On webgpu, up to two layers: one program each way (common/gpu-step.ts). */
  readonly gpuStep?: string;
  /** The stack's shape and constants, as the wasm kernel and the GPU programs take them. */
  private readonly stack;

  constructor(
    private readonly options: Readonly<RnnpropOptions>,
    private readonly weights: WeightSource,
  ) {
    const { beta1, beta2, epsilon, inputUnits, hidden, layers, lr } = options;
    this.stack = { features: 'adam' as const, beta1, beta2, epsilon, inputUnits, hidden, layers, outputTanh: true, scale: -lr };
    this.gpuStep = lstmStackGpuStep(layers);
    this.fused = lstmStackKernel(this.stack, () => weights.variables);
  }

  init(params: NamedTensors): OptimizerState {
    const n = coordinateLayout(params).total;
    const { hidden, layers } = this.options;
    const slots: Record<string, TensorTree> = { m: tf.zeros([1, n]), v: tf.zeros([1, n]), ...zeroLstmState(layers, hidden, n) };
    // The state owns its params: copies, so that disposing an old state never frees the caller's tensors.
    return { params: cloneNamed(params), slots, step: 0 };
  }

  update(state: OptimizerState, grads: NamedTensors, ctx: StepContext): OptimizerState {
    const layout = coordinateLayout(state.params);
    checkLayout(layout, grads, 'rnnprop: gradients');
    const slots = this.checkSlots(state.slots, layout.total);
    const { layers, beta1, beta2, epsilon, lr } = this.options;
    const t = state.step + 1;
    if (lstmStackUpdateOnGpuHere(this.stack, ctx.constantGrads)) {
      // One GPU program (and one for its gradient) instead of the ops below (gpu-step.ts).
      const kernels = lstmStackWeightNames(this.stack).map((n) => this.kernel(n));
      const next = lstmStackUpdateOnGpu(state.params, grads, layout, kernels, slots, { ...this.stack, t });
      return { params: next.params, slots: next.slots, step: t };
    }
    const next = tidyTree(() => {
      const g = flattenCoordinates(grads, layout);
      const m = tf.add(tf.mul(slots.m, beta1), tf.mul(g, 1 - beta1)) as tf.Tensor2D;
      const v = tf.add(tf.mul(slots.v, beta2), tf.mul(tf.square(g), 1 - beta2)) as tf.Tensor2D;
      // 1/(√v̂ + ε) with v̂ = v/(1 − β2^t); m̂ = m/(1 − β1^t).
      const inv = tf.reciprocal(tf.add(tf.sqrt(tf.div(v, 1 - beta2 ** t)), epsilon));
      const features = tf.concat([tf.mul(g, inv), tf.mul(tf.mul(m, 1 / (1 - beta1 ** t)), inv)], 0) as tf.Tensor2D;
      let x = tf.elu(affine(this.kernel('input/kernel'), features)) as tf.Tensor2D;
      const newSlots: Record<string, TensorTree> = { m, v };
      for (let l = 0; l < layers; l++) {
        const { h, c } = slots[lstmLayerName(l)] as RnnpropLayerState;
        const cell = lstmCell(this.kernel(`${lstmLayerName(l)}/kernel`), x, h, c);
        newSlots[lstmLayerName(l)] = cell;
        x = cell.h;
      }
      const step = tf.mul(fastTanh(affine(this.kernel('output/kernel'), x)), -lr);
      const deltas = unflattenCoordinates(step, layout);
      const params: NamedTensors = {};
      for (const name of layout.names) params[name] = tf.add(state.params[name]!, deltas[name]!);
      return { params, slots: newSlots };
    });
    return { params: next.params, slots: next.slots, step: t };
  }

  private kernel(name: string): tf.Tensor2D {
    return this.weights.get(name) as tf.Tensor as tf.Tensor2D;
  }

  private checkSlots(slots: TensorTree, n: number): RnnpropSlots {
    const s = slots as unknown as Record<string, Record<string, unknown> | undefined>;
    const { layers, hidden } = this.options;
    const expect = (t: unknown, rows: number, what: string) => {
      if (!(t instanceof tf.Tensor) || t.rank !== 2 || t.shape[0] !== rows || t.shape[1] !== n) {
        throw new Error(
          `rnnprop: state slot ${what} must be a [${rows}, ${n}] tensor (one column per coordinate)` +
            (t instanceof tf.Tensor ? `, got [${t.shape.join(', ')}]` : ''),
        );
      }
    };
    expect(s?.m, 1, 'm');
    expect(s?.v, 1, 'v');
    for (let l = 0; l < layers; l++) {
      for (const key of ['h', 'c'] as const) expect(s?.[lstmLayerName(l)]?.[key], hidden, `${lstmLayerName(l)}.${key}`);
    }
    return slots as unknown as RnnpropSlots;
  }
}
