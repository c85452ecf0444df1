/**
 * UnsortedSegmentSum for the wasm backend (tfjs 4.22 ships none, so the gradient of `gather`, which
 * scatters back with it, fails there): out[s, ...] = Σ_{i: ids[i] = s} x[i, ...]. Ids outside
 * [0, numSegments) are dropped, as in TensorFlow. A plain loop over the backend's memory: it is
 * memory-bound, one read and one add per element.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export function unsortedSegmentSumWasm(args: { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const n = tf.util.sizeFromShape(segmentIds.shape);
  const prefix = x.shape.slice(0, segmentIds.shape.length);
  if (prefix.length !== segmentIds.shape.length || prefix.some((d, i) => d !== segmentIds.shape[i])) {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const inner = n === 0 ? 0 : tf.util.sizeFromShape(x.shape) / n;
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  // readSync copies out of the wasm heap, so the views below stay valid while the output is allocated.
  const xs = backend.readSync(x.dataId) as tf.TypedArray;
  const ids = backend.readSync(segmentIds.dataId) as tf.TypedArray;
  const out = backend.makeOutput(outShape, x.dtype);
  const values = backend.typedArrayFromHeap(out);
  values.fill(0);
  for (let i = 0; i < n; i++) {
    const s = ids[i]!;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let k = 0; k < inner; k++) values[dst + k] += xs[src + k]!;
  }
  return out;
}
