import * as tf from '@tensorflow/tfjs-core';

/** Runs a registered kernel of `backend` directly (no tape, no engine bookkeeping): the caller disposes the result. */
export function callKernel(backend: tf.KernelBackend & { dataIdMap?: unknown }, name: string, inputs: tf.NamedTensorInfoMap, attrs: Record<string, unknown>): tf.TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`the wasm backend has no ${name} kernel`);
  const out = kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  if (Array.isArray(out)) throw new Error(`kernel ${name} returned ${out.length} outputs, expected one`);
  return out as tf.TensorInfo;
}
