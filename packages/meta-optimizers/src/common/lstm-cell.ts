import * as tf from '@tensorflow/tfjs-core';
import { fastTanh } from './activations';
import type { NamedTensors } from '@l2l/core';
import { lstmGates, lstmGatesGrad, sumOfOuterProducts, webGpuKernelsHere } from './webgpu-kernels';
import { rowSlice, splitRows } from './row-slice';
import { initKernelWithBias } from './weights';

/**
 * One step of an LSTM layer for N coordinates at once, feature-major, as a single differentiable op:
 * `kernel` is `[4H, X + H + 1]` (columns: input, hidden, bias; row blocks: input gate i, forget gate f,
 * cell candidate g, output gate o), `x` is `[X, N]`, `h` and `c` are `[H, N]`. Returns `[h'; c']`
 * (`[2H, N]`), where
 *
 *     [i; f; g; o] = K · [x; h; 1],  c' = σ(f)·c + σ(i)·tanh(g),  h' = σ(o)·tanh(c').
 *
 * Written as one `tf.customGrad` with a hand-written backward pass: on tfjs-wasm this avoids the
 * copies that every taped op makes of the tensors it saves, the slow transposed matmuls of tfjs's
 * MatMul gradient and its slow Tanh kernel. Saved for the backward pass: [x; h; 1], c and the
 * activations. On webgpu the gates run as two fused GPU programs instead, and the backward pass recomputes the
 * activations from the saved pre-activations.
 */
export const lstmCellPacked = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [kernel, x, h, c, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  const [inputs, n] = x.shape;
  const hidden = h.shape[0];
  if (h.shape[1] !== n || c.shape[0] !== hidden || c.shape[1] !== n) {
    throw new Error(`lstmCell: h [${h.shape.join(', ')}] and c [${c.shape.join(', ')}] must both be [hidden, ${n}]`);
  }
  if (kernel.shape[0] !== 4 * hidden || kernel.shape[1] !== inputs + hidden + 1) {
    throw new Error(`lstmCell: kernel is [${kernel.shape.join(', ')}], expected [${4 * hidden}, ${inputs + hidden + 1}]`);
  }
  const z = tf.concat([x, h, tf.ones([1, n])], 0) as tf.Tensor2D;
  if (webGpuKernelsHere()) {
    // On a GPU each op is a launch: the gates as one program each way (webgpu-kernels.ts).
    const a = tf.matMul(kernel, z) as tf.Tensor2D;
    save([kernel, z, c, a]);
    return {
      value: lstmGates(a, c),
      gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [k, zs, cs, as] = saved as tf.Tensor2D[];
          const dac = lstmGatesGrad(as, cs, dy);
          const da = rowSlice(dac, 0, 4 * hidden);
          const dz = tf.matMul(k, da, true, false);
          return [sumOfOuterProducts(da, zs), rowSlice(dz, 0, inputs), rowSlice(dz, inputs, hidden), rowSlice(dac, 4 * hidden, hidden)];
        }),
    };
  }
  const [ai, af, ag, ao] = splitRows(tf.matMul(kernel, z), [hidden, hidden, hidden, hidden]);
  const i = tf.sigmoid(ai);
  const f = tf.sigmoid(af);
  const g = fastTanh(ag);
  const o = tf.sigmoid(ao);
  const c2 = tf.add(tf.mul(f, c), tf.mul(i, g));
  const tc = fastTanh(c2);
  const h2 = tf.mul(o, tc);
  save([kernel, z, c, i, f, g, o, tc]);
  return {
    value: tf.concat([h2, c2], 0) as tf.Tensor2D,
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      // tfjs runs a customGrad's gradient outside any scope and frees nothing until the whole backward
      // pass ends: without this tidy every intermediate here would stay allocated until then.
      return tf.tidy(() => {
        const [k, zs, cs, is, fs, gs, os, tcs] = saved as tf.Tensor2D[];
        const [dh2, dc2In] = splitRows(dy, [hidden, hidden]);
        // dL/dc' collects the direct gradient and the path through h' = o·tanh(c').
        const dc2 = tf.add(dc2In, tf.mul(tf.mul(dh2, os), tf.sub(1, tf.square(tcs))));
        const dai = tf.mul(tf.mul(dc2, gs), tf.mul(is, tf.sub(1, is)));
        const daf = tf.mul(tf.mul(dc2, cs), tf.mul(fs, tf.sub(1, fs)));
        const dag = tf.mul(tf.mul(dc2, is), tf.sub(1, tf.square(gs)));
        const dao = tf.mul(tf.mul(dh2, tcs), tf.mul(os, tf.sub(1, os)));
        const da = tf.concat([dai, daf, dag, dao], 0) as tf.Tensor2D;
        const dKernel = tf.matMul(da, tf.transpose(zs));
        // Kᵀ·da computed as (daᵀ·K)ᵀ: tfjs-wasm repacks a matmul's right operand on every call, and packing
        // da ([4H, N]) costs more than the two transposes (8.8 → 4.5 ms at N = 15,910, H = 20, layer 0).
        const dz = tf.transpose(tf.matMul(tf.transpose(da), k));
        return [dKernel, rowSlice(dz, 0, inputs), rowSlice(dz, inputs, hidden), tf.mul(dc2, fs)];
      });
    },
  };
}) as (kernel: tf.Tensor2D, x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D) => tf.Tensor2D;

/** `lstmCellPacked` with h' and c' as separate `[H, N]` tensors. */
export function lstmCell(kernel: tf.Tensor2D, x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D): { h: tf.Tensor2D; c: tf.Tensor2D } {
  const hidden = h.shape[0];
  return tf.tidy(() => {
    const hc = lstmCellPacked(kernel, x, h, c);
    return { h: rowSlice(hc, 0, hidden), c: rowSlice(hc, hidden, hidden) };
  });
}

/** One LSTM layer's state for N coordinates, feature-major: `h` and `c` are `[hidden, N]`. */
export interface LstmLayerState {
  readonly h: tf.Tensor2D;
  readonly c: tf.Tensor2D;
}

/** Name of layer `l` of an LSTM stack: its state slot (`lstm0`) and, with `/kernel`, its weight. */
export function lstmLayerName(l: number): string {
  return `lstm${l}`;
}

/**
 * Initial kernels `lstm{l}/kernel` (`[4H, in + H + 1]`, bias last) of a stack of LSTM layers whose first layer
 * reads `inputs` features; the forget gate's bias starts at `forgetBias`.
 */
export function initLstmStack(seed: number, inputs: number, o: { layers: number; hidden: number; initScale: number; forgetBias: number }): NamedTensors {
  const out: NamedTensors = {};
  const H = o.hidden;
  for (let l = 0, fanIn = inputs; l < o.layers; l++, fanIn = H) {
    const name = `${lstmLayerName(l)}/kernel`;
    // Gate rows: [0,H) input, [H,2H) forget, [2H,3H) cell candidate, [3H,4H) output.
    out[name] = initKernelWithBias(seed, name, 4 * H, fanIn + H, o.initScale, (r) => (r >= H && r < 2 * H ? o.forgetBias : 0));
  }
  return out;
}

/** Zero state `{ lstm0: {h, c}, ... }` of a stack of LSTM layers for N coordinates. */
export function zeroLstmState(layers: number, hidden: number, n: number): Record<string, LstmLayerState> {
  const out: Record<string, LstmLayerState> = {};
  for (let l = 0; l < layers; l++) out[lstmLayerName(l)] = { h: tf.zeros([hidden, n]), c: tf.zeros([hidden, n]) };
  return out;
}
