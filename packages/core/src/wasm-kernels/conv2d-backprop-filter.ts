/**
 * Conv2DBackpropFilter for the wasm backend (tfjs 4.22 ships none, so the gradient of `conv2d` with
 * respect to its filter fails there). The filter gradient is itself a convolution:
 *
 *   dW[kh, kw, ci, co] = Σ_{b, i, j} xPadded[b, s·i + kh, s·j + kw, ci] · dy[b, i, j, co]
 *
 * which is a VALID convolution of the padded input seen as [ci, H, W, b] (batch as input channels) with
 * dy seen as a filter [oh, ow, b, co], dilated by the forward stride. It runs on the wasm backend's own
 * Conv2D, PadV2, Transpose and Slice kernels (XNNPACK), so it costs about what the forward pass costs.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { callKernel, forwardConvInfo } from './call-kernel';

export function conv2dBackpropFilterWasm(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { filterShape } = args.attrs as unknown as { filterShape: number[] };
  const info = forwardConvInfo('Conv2DBackpropFilter', x.shape, filterShape, args.attrs);
  const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
  const temps: tf.TensorInfo[] = [];
  const keep = (t: tf.TensorInfo): tf.TensorInfo => (temps.push(t), t);
  try {
    let xp = x;
    const { top, bottom, left, right } = padInfo;
    if (top || bottom || left || right) {
      // SAME padding may pad more after than before; a negative pad (never produced by tfjs) is not handled.
      xp = keep(callKernel(backend, 'PadV2', { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 }));
    }
    const xt = keep(callKernel(backend, 'Transpose', { x: xp }, { perm: [3, 1, 2, 0] })); // [ci, Hp, Wp, b]
    const f = keep(callKernel(backend, 'Transpose', { x: dy }, { perm: [1, 2, 0, 3] })); // [oh, ow, b, co]
    let r = keep(
      callKernel(backend, 'Conv2D', { x: xt, filter: f }, { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [strideHeight, strideWidth], dimRoundingMode: undefined }),
    ); // [ci, ≥kh, ≥kw, co]: rows the forward stride skipped at the end give extra outputs
    if (r.shape[1] !== filterHeight || r.shape[2] !== filterWidth) {
      r = keep(callKernel(backend, 'Slice', { x: r }, { begin: [0, 0, 0, 0], size: [r.shape[0]!, filterHeight, filterWidth, r.shape[3]!] }));
    }
    return callKernel(backend, 'Transpose', { x: r }, { perm: [1, 2, 0, 3] }); // [kh, kw, ci, co]
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
}
