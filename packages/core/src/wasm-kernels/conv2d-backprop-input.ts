/**
 * Conv2DBackpropInput for the wasm backend. tfjs 4.22's own is a scalar loop outside XNNPACK (about 0.5 GFLOP/s
 * here: 0.6 s of a 1.8 s STN training step went to one call), so this one replaces it. The input gradient is a
 * full correlation of dy with the filter:
 *
 *   dx[b, i, j, ci] = Σ_{kh, kw, co} dy'[b, i + pt − kh, j + pl − kw, co] · W[kh, kw, ci, co]
 *
 * where dy' is dy dilated by the forward stride (s − 1 zeros between rows and columns) and pt, pl the forward
 * pass's top and left padding. That is a VALID convolution of dy', padded by (KH − 1 − pt) rows before, with the filter flipped in space and its channel axes
 * swapped, so it runs on the wasm backend's own Conv2D (XNNPACK), PadV2, Reverse, Transpose, Reshape and Slice:
 * the forward pass's cost at stride 1 (s² times it at stride s, on the dilation's zeros).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { callKernel, forwardConvInfo } from './call-kernel';

export function conv2dBackpropInputWasm(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { inputShape } = args.attrs as unknown as { inputShape: number[] };
  const info = forwardConvInfo('Conv2DBackpropInput', inputShape, filter.shape, args.attrs);
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const temps: tf.TensorInfo[] = [];
  const keep = (t: tf.TensorInfo): tf.TensorInfo => (temps.push(t), t);
  try {
    let d = dy;
    if (strideHeight > 1 || strideWidth > 1) {
      // Dilate: [b, oh, 1, ow, 1, co] padded after the unit axes to [b, oh, sh, ow, sw, co] is [b, oh·sh, ow·sw, co].
      const r = keep(callKernel(backend, 'Reshape', { x: dy }, { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] }));
      const p = keep(
        callKernel(backend, 'PadV2', { x: r }, { paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]], constantValue: 0 }),
      );
      d = keep(callKernel(backend, 'Reshape', { x: p }, { shape: [batchSize, outHeight * strideHeight, outWidth * strideWidth, outChannels] }));
    }
    // Rows before and after the dilated dy so that the VALID convolution gives inHeight rows; negative amounts
    // (explicit padding larger than the filter, or rows the forward stride never reached) are cut instead.
    const top = filterHeight - 1 - padInfo.top;
    const left = filterWidth - 1 - padInfo.left;
    const bottom = inHeight + filterHeight - 1 - top - d.shape[1]!;
    const right = inWidth + filterWidth - 1 - left - d.shape[2]!;
    if (top < 0 || left < 0 || bottom < 0 || right < 0) {
      const begin = [0, Math.max(0, -top), Math.max(0, -left), 0];
      const size = [batchSize, d.shape[1]! - begin[1]! - Math.max(0, -bottom), d.shape[2]! - begin[2]! - Math.max(0, -right), outChannels];
      d = keep(callKernel(backend, 'Slice', { x: d }, { begin, size }));
    }
    if (top > 0 || left > 0 || bottom > 0 || right > 0) {
      const paddings = [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
      d = keep(callKernel(backend, 'PadV2', { x: d }, { paddings, constantValue: 0 }));
    }
    const flipped = keep(callKernel(backend, 'Reverse', { x: filter }, { dims: [0, 1] }));
    const w = keep(callKernel(backend, 'Transpose', { x: flipped }, { perm: [0, 1, 3, 2] })); // [kh, kw, co, ci]
    return callKernel(backend, 'Conv2D', { x: d, filter: w }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}
