import * as tf from '@tensorflow/tfjs-core';
import { cloneNamed, type FusedKernel, type NamedTensors, type Optimizer, type OptimizerState, type StepContext, type TensorTree } from '@l2l/core';
import {
  affine,
  checkLayout,
  coordinateLayout,
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
  preprocessedFeatures,
  preprocessGradients,
  tidyTree,
  unflattenCoordinates,
  NamedWeightsMetaOptimizer,
} from '../common';
import { lstmStackKernel, lstmStackWeightNames } from '../kernels';
import { resolveLstmOptions, type LstmOptions } from './options';

/** The optimizer's slots: `{ lstm0: {h, c}, lstm1: {h, c}, ... }`. */
export type LstmSlots = Readonly<Record<string, LstmLayerState>>;


/** φ₀ of the LSTM: each layer's kernel with its bias column (forget gate at `forgetBias`), then the output layer. */
function initialLstmWeights(options: Readonly<LstmOptions>, seed: number): NamedTensors {
  return {
    ...initLstmStack(seed, preprocessedFeatures(options.preprocessing), options),
    'output/kernel': initKernelWithBias(seed, 'output/kernel', 1, options.hidden, options.initScale),
  };
}

/**
 * The coordinatewise LSTM optimizer of Andrychowicz et al. 2016, "Learning to learn by gradient descent
 * by gradient descent": a stack of LSTMs whose weights are shared by every coordinate of every parameter
 * tensor and whose state is kept per coordinate; the update of each coordinate is
 * `outputScale · (W_out · [h_top; 1])`.
 *
 * Layout (chosen for tfjs speed): the gradients of all parameter tensors are flattened onto one axis of
 * N coordinates (see `coordinateLayout`); per-coordinate tensors are feature-major `[features, N]`;
 * biases are folded into the kernels, so each layer is one product `gates = K · [x; h; 1]` with `K` of
 * shape `[4·hidden, in + hidden + 1]` and gate rows in the order input, forget, cell candidate, output
 * (see `lstmCellPacked`, which runs a whole layer step as one op with a hand-written gradient).
 * Weights: `lstm{l}/kernel` for each layer and `output/kernel` (`[1, hidden + 1]`, last column the
 * bias). State: `slots.lstm{l}.h` and `.c`, each `[hidden, N]`.
 */
export class LstmMetaOptimizer extends NamedWeightsMetaOptimizer<LstmOptions> {
  /** Coordinatewise (MetaOptimizer.coordinatewise): the LSTM reads each coordinate's own preprocessed gradient and keeps its own cell state. */
  readonly coordinatewise = true;

  /** `options` are validated and completed with defaults; `seed` determines the initial weights. */
  constructor(options: Partial<LstmOptions> = {}, seed = 0) {
    const resolved = Object.freeze(resolveLstmOptions(options));
    super('lstm', resolved, initialLstmWeights(resolved, seed));
  }

  protected build(source: WeightSource): Optimizer {
    return new LstmOptimizer(this.options, source);
  }
}

/** The optimizer a `LstmMetaOptimizer` defines; its updates are ops on the meta-optimizer's variables. */
class LstmOptimizer implements Optimizer {
  readonly name = 'lstm';
  /** The same updates in the wasm lstm-stack kernel (kernels/), where WebAssembly SIMD runs. */
  readonly fused?: FusedKernel;
  /** On webgpu, up to two layers: one program each way (common/gpu-step.ts). */
  readonly gpuStep?: string;
  /** The stack's shape and constants, as the wasm kernel and the GPU programs take them. */
  private readonly stack;

  constructor(
    private readonly options: Readonly<LstmOptions>,
    private readonly weights: WeightSource,
  ) {
    const { preprocessing, k, hidden, layers, outputScale } = options;
    this.stack = { features: preprocessing, k, inputUnits: 0, hidden, layers, outputTanh: false, scale: outputScale };
    this.gpuStep = lstmStackGpuStep(layers);
    this.fused = lstmStackKernel(this.stack, () => weights.variables);
  }

  init(params: NamedTensors): OptimizerState {
    const layout = coordinateLayout(params);
    const { hidden, layers } = this.options;
    const slots = zeroLstmState(layers, hidden, layout.total);
    // The state owns its params: copies, so that disposing an old state never frees the caller's tensors.
    return { params: cloneNamed(params), slots: slots as unknown as TensorTree, step: 0 };
  }

  update(state: OptimizerState, grads: NamedTensors, ctx: StepContext): OptimizerState {
    const layout = coordinateLayout(state.params);
    checkLayout(layout, grads, 'lstm: gradients');
    const slots = this.checkSlots(state.slots, layout.total);
    const { layers, preprocessing, k, outputScale } = this.options;
    if (lstmStackUpdateOnGpuHere(this.stack, ctx.constantGrads)) {
      // One GPU program (and one for its gradient) instead of the ops below (gpu-step.ts).
      const kernels = lstmStackWeightNames(this.stack).map((n) => this.kernel(n));
      const next = lstmStackUpdateOnGpu(state.params, grads, layout, kernels, slots, this.stack);
      return { params: next.params, slots: next.slots, step: state.step + 1 };
    }
    const next = tidyTree(() => {
      const g = flattenCoordinates(grads, layout);
      let x: tf.Tensor2D = preprocessGradients(g, preprocessing, k);
      const newSlots: Record<string, LstmLayerState> = {};
      for (let l = 0; l < layers; l++) {
        const { h, c } = slots[lstmLayerName(l)]!;
        const cell = lstmCell(this.kernel(`${lstmLayerName(l)}/kernel`), x, h, c);
        newSlots[lstmLayerName(l)] = cell;
        x = cell.h;
      }
      const out = affine(this.kernel('output/kernel'), x);
      const deltas = unflattenCoordinates(tf.mul(out, outputScale), layout);
      const params: NamedTensors = {};
      for (const name of layout.names) params[name] = tf.add(state.params[name]!, deltas[name]!);
      return { params, slots: newSlots };
    });
    return { params: next.params, slots: next.slots as unknown as TensorTree, step: state.step + 1 };
  }

  private kernel(name: string): tf.Tensor2D {
    return this.weights.get(name) as tf.Tensor as tf.Tensor2D;
  }

  private checkSlots(slots: TensorTree, n: number): LstmSlots {
    const s = slots as unknown as LstmSlots;
    const { layers, hidden } = this.options;
    for (let l = 0; l < layers; l++) {
      const layer = s?.[lstmLayerName(l)];
      for (const key of ['h', 'c'] as const) {
        const t = layer?.[key];
        if (!(t instanceof tf.Tensor) || t.shape[0] !== hidden || t.shape[1] !== n) {
          throw new Error(
            `lstm: state slot ${lstmLayerName(l)}.${key} must be a [${hidden}, ${n}] tensor (one column per coordinate)` +
              (t instanceof tf.Tensor ? `, got [${t.shape.join(', ')}]` : ''),
          );
        }
      }
    }
    return s;
  }
}
