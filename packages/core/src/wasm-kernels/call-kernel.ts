import * as tf from '@tensorflow/tfjs-core';

/** Runs a registered kernel of `backend` directly (no tape, no engine bookkeeping): the caller disposes the result. */
export function callKernel(backend: tf.KernelBackend & { dataIdMap?: unknown }, name: string, inputs: tf.NamedTensorInfoMap, attrs: Record<string, unknown>): tf.TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`the wasm backend has no ${name} kernel`);
  const out = kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  if (Array.isArray(out)) throw new Error(`kernel ${name} returned ${out.length} outputs, expected one`);
  return out as tf.TensorInfo;
}

/** The attributes tfjs gives both convolution gradients (Conv2DBackpropFilter and Conv2DBackpropInput). */
interface ConvGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The forward convolution's geometry behind a convolution gradient kernel `name` (NHWC only, as the wasm Conv2D). */
export function forwardConvInfo(name: string, xShape: number[], filterShape: number[], attrs: tf.NamedAttrMap | undefined): tf.backend_util.Conv2DInfo {
  const { strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as ConvGradAttrs;
  if (dataFormat === 'NCHW') throw new Error(`${name} (wasm): only NHWC data is supported, as for the wasm Conv2D kernel`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
}
