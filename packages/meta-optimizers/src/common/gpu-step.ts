import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors, TensorTree } from '@l2l/core';
import { flattenCoordinates, unflattenCoordinates, type CoordinateLayout } from './coordinates';
import { lstmLayerName, type LstmLayerState } from './lstm-cell';
import { rowSlice } from './row-slice';
import { tidyTree } from './tidy';
import {
  lstmStackLayout,
  lstmStackStep,
  lstmStackStepGrad,
  lstmStackStepGradRows,
  LSTM_STACK_STEP_MAX_LAYERS,
  sumOfOuterProducts,
  webGpuKernelsHere,
  type LstmStackStepConstants,
  type LstmStackStepSpec,
} from './webgpu-kernels';

/**
 * Whether an LSTM-stack optimizer's update runs as one GPU program (lstmStackUpdateOnGpu): on webgpu, for up to
 * LSTM_STACK_STEP_MAX_LAYERS layers; where no tape records, or on a tape when the gradients are constants
 * (`constantGrads`, first order), with its backward pass as one program too. Elsewhere the differentiable ops run.
 */
export function lstmStackUpdateOnGpuHere(spec: LstmStackStepSpec, constantGrads = false): boolean {
  if (spec.layers > LSTM_STACK_STEP_MAX_LAYERS || !webGpuKernelsHere()) return false;
  return !tf.engine().isTapeOn() || constantGrads;
}

/** An LSTM-stack optimizer's `gpuStep` (contracts/optimizer.ts): what lstmStackUpdateOnGpu runs, where it can. */
export function lstmStackGpuStep(layers: number): string | undefined {
  return layers <= LSTM_STACK_STEP_MAX_LAYERS ? 'its update and gradient as one GPU program each' : undefined;
}

/** φ's kernels as one row, in the programs' order. */
function phiRow(kernels: readonly tf.Tensor[]): tf.Tensor1D {
  return tf.concat(kernels.map((k) => tf.reshape(k, [-1])), 0) as tf.Tensor1D;
}

/**
 * lstmStackStep on a gradient tape, first order (g, and rnnprop's m and v, constants): one tf.customGrad over the
 * kernels and each layer's h and c, whose backward pass is LSTM_STACK_STEP_GRAD and one product per kernel
 * (sumOfOuterProducts), in the kernels' order (input layer, LSTM layers, output).
 */
function lstmStackStepTaped(g: tf.Tensor2D, kernels: readonly tf.Tensor[], layers: readonly LstmLayerState[], spec: LstmStackStepSpec, constants: LstmStackStepConstants): tf.Tensor2D {
  const L = spec.layers;
  const H = spec.hidden;
  const step = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const ks = args.slice(0, kernels.length) as tf.Tensor[];
    const st = args.slice(kernels.length, args.length - 1) as tf.Tensor2D[];
    const phi = phiRow(ks);
    const pairs = (t: tf.Tensor[]) => Array.from({ length: L }, (_, l) => ({ h: t[2 * l] as tf.Tensor2D, c: t[2 * l + 1] as tf.Tensor2D }));
    // g is saved too: the update's tidy frees it before the backward pass.
    save([g, phi, ...st]);
    return {
      value: lstmStackStep(g, phi, pairs(st), spec, constants),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sg, sphi, ...sst] = saved;
          const back = lstmStackStepGrad(sg as tf.Tensor2D, sphi as tf.Tensor1D, pairs(sst), dy as tf.Tensor2D, spec, constants);
          const rows = lstmStackStepGradRows(spec);
          const dInput = spec.inputUnits > 0 ? [sumOfOuterProducts(rowSlice(back, rows.daIn, spec.inputUnits), rowSlice(back, rows.zIn, rows.zInRows))] : [];
          const dKernels = Array.from({ length: L }, (_, l) => sumOfOuterProducts(rowSlice(back, rows.da[l]!, 4 * H), rowSlice(back, rows.z[l]!, rows.zRows[l]!)));
          dKernels.push(sumOfOuterProducts(rowSlice(back, rows.dOut, 1), rowSlice(back, rows.zTop, H + 1)));
          const dState = Array.from({ length: L }, (_, l) => [rowSlice(back, rows.dh[l]!, H), rowSlice(back, rows.dc[l]!, H)]).flat();
          return [...dInput, ...dKernels, ...dState];
        }),
    };
  }) as (...xs: tf.Tensor[]) => tf.Tensor2D;
  return step(...kernels, ...layers.flatMap((s) => [s.h, s.c]));
}

/**
 * The new parameters and slots of an LSTM-stack optimizer's update (`lstm`, `rnnprop`) computed by one GPU program
 * (lstmStackStep), where the ops would launch one program each: `kernels` φ's kernels in the program's order
 * (input layer, LSTM layers, output: lstmStackWeightNames), `slots` the optimizer's (`lstm{l}`: h and c; with Adam
 * features `m` and `v`), `spec` the optimizer's shape and constants (its wasm kernel's spec, with Adam's step t).
 * The same values as the ops to float32 rounding; on a tape (where lstmStackUpdateOnGpuHere allows it) the same
 * first-order gradients.
 */
export function lstmStackUpdateOnGpu(
  params: NamedTensors,
  grads: NamedTensors,
  layout: CoordinateLayout,
  kernels: readonly tf.Tensor[],
  slots: Readonly<Record<string, unknown>>,
  spec: LstmStackStepSpec & LstmStackStepConstants,
): { params: NamedTensors; slots: Record<string, TensorTree> } {
  const adam = spec.features === 'adam';
  const { head } = lstmStackLayout(spec); // the update's row, then m' and v'
  return tidyTree(() => {
    const g = flattenCoordinates(grads, layout);
    const input = adam ? (tf.concat([g, slots.m as tf.Tensor2D, slots.v as tf.Tensor2D], 0) as tf.Tensor2D) : g;
    const layers = Array.from({ length: spec.layers }, (_, l) => slots[lstmLayerName(l)] as LstmLayerState);
    const out = tf.engine().isTapeOn()
      ? lstmStackStepTaped(input, kernels, layers, spec, spec)
      : lstmStackStep(input, phiRow(kernels), layers, spec, spec);
    // One split (its gradient is one concat; separate slices' would be a pad each and their sum).
    const parts = tf.split(out, [...new Array<number>(head).fill(1), ...new Array<number>(2 * spec.layers).fill(spec.hidden)], 0) as tf.Tensor2D[];
    const newSlots: Record<string, TensorTree> = adam ? { m: parts[1]!, v: parts[2]! } : {};
    for (let l = 0; l < spec.layers; l++) newSlots[lstmLayerName(l)] = { h: parts[head + 2 * l]!, c: parts[head + 2 * l + 1]! };
    const deltas = unflattenCoordinates(parts[0]!, layout);
    const next: NamedTensors = {};
    for (const name of layout.names) next[name] = tf.add(params[name]!, deltas[name]!);
    return { params: next, slots: newSlots };
  });
}
