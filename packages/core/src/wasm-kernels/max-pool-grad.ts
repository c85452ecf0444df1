/**
 * MaxPoolGrad for the wasm backend, replacing tfjs 4.22's: its C++ kernel starts each window's running
 * maximum at 0, so a window whose values are all negative passes no gradient at all (measured: a 4×4
 * input with one all-negative 2×2 window loses that window's gradient). Like the cpu backend, this
 * routes each output's gradient to the first maximum of its window (row-major), ignoring padding.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export function maxPoolGradWasm(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize, inHeight, inWidth, inChannels: ch, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth, padInfo } = info;
  const x = backend.readSync(input.dataId) as Float32Array;
  const g = backend.readSync(dy.dataId) as Float32Array;
  const out = backend.makeOutput(input.shape, input.dtype);
  const dx = backend.typedArrayFromHeap(out);
  dx.fill(0);
  for (let b = 0; b < batchSize; b++) {
    const xb = b * inHeight * inWidth * ch;
    const yb = b * outHeight * outWidth * ch;
    for (let oy = 0; oy < outHeight; oy++) {
      const r0 = oy * strideHeight - padInfo.top;
      for (let ox = 0; ox < outWidth; ox++) {
        const c0 = ox * strideWidth - padInfo.left;
        for (let c = 0; c < ch; c++) {
          let best = -1;
          let bestValue = -Infinity;
          for (let r = Math.max(0, r0); r < Math.min(inHeight, r0 + filterHeight); r++) {
            for (let col = Math.max(0, c0); col < Math.min(inWidth, c0 + filterWidth); col++) {
              const at = xb + (r * inWidth + col) * ch + c;
              const v = x[at]!;
              if (v > bestValue || best < 0) {
                bestValue = v;
                best = at;
              }
            }
          }
          if (best >= 0) dx[best] += g[yb + (oy * outWidth + ox) * ch + c]!;
        }
      }
    }
  }
  return out;
}
