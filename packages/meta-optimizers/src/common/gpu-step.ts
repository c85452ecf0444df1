import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors, TensorTree } from '@l2l/core';
import { flattenCoordinates, unflattenCoordinates, type CoordinateLayout } from './coordinates';
import { lstmLayerName, type LstmLayerState } from './lstm-cell';
import { rowSlice } from './row-slice';
import { tidyTree } from './tidy';
import { lstmStackStep, LSTM_STACK_STEP_MAX_LAYERS, webGpuKernelsHere, type LstmStackStepConstants, type LstmStackStepSpec } from './webgpu-kernels';

/**
 * Whether an LSTM-stack optimizer's update runs as one GPU program (lstmStackUpdateOnGpu): on webgpu, with no tape
 * recording (a tape needs the differentiable ops), and for up to LSTM_STACK_STEP_MAX_LAYERS layers.
 */
export function lstmStackUpdateOnGpuHere(layers: number): boolean {
  return layers <= LSTM_STACK_STEP_MAX_LAYERS && webGpuKernelsHere() && !tf.engine().isTapeOn();
}

/**
 * The new parameters and slots of an LSTM-stack optimizer's update (`lstm`, `rnnprop`) computed by one GPU program
 * (lstmStackStep), where the ops would launch one program each: `kernels` φ's kernels in the program's order
 * (input layer, LSTM layers, output), `slots` the optimizer's (`lstm{l}`: h and c; with Adam features `m` and
 * `v`). The same values as the ops to float32 rounding.
 */
export function lstmStackUpdateOnGpu(
  params: NamedTensors,
  grads: NamedTensors,
  layout: CoordinateLayout,
  kernels: readonly tf.Tensor[],
  slots: Readonly<Record<string, unknown>>,
  spec: LstmStackStepSpec,
  constants: LstmStackStepConstants,
): { params: NamedTensors; slots: Record<string, TensorTree> } {
  const adam = spec.features === 'adam';
  return tidyTree(() => {
    const phi = tf.concat(kernels.map((k) => tf.reshape(k, [-1])), 0) as tf.Tensor1D;
    const g = flattenCoordinates(grads, layout);
    const input = adam ? (tf.concat([g, slots.m as tf.Tensor2D, slots.v as tf.Tensor2D], 0) as tf.Tensor2D) : g;
    const layers = Array.from({ length: spec.layers }, (_, l) => slots[lstmLayerName(l)] as LstmLayerState);
    const out = lstmStackStep(input, phi, layers, spec, constants);
    const newSlots: Record<string, TensorTree> = adam ? { m: rowSlice(out, 1, 1), v: rowSlice(out, 2, 1) } : {};
    const first = adam ? 3 : 1;
    for (let l = 0; l < spec.layers; l++) {
      const row = first + 2 * spec.hidden * l;
      newSlots[lstmLayerName(l)] = { h: rowSlice(out, row, spec.hidden), c: rowSlice(out, row + spec.hidden, spec.hidden) };
    }
    const deltas = unflattenCoordinates(rowSlice(out, 0, 1), layout);
    const next: NamedTensors = {};
    for (const name of layout.names) next[name] = tf.add(params[name]!, deltas[name]!);
    return { params: next, slots: newSlots };
  });
}
