import * as tf from '@tensorflow/tfjs-core';

/**
 * Rows `[begin, begin + size)` of a tensor, i.e. a slice along axis 0 (a contiguous block in memory).
 *
 * On the wasm backend, tfjs's Slice kernel first copies the whole input out of the wasm heap
 * (`readSync`) and then copies the slice back in: 1.6 ms for half of a [40, 15,910] tensor, 10.9 ms to
 * split [80, 15,910] into four row blocks. This kernel copies only the rows (one memcpy on the heap),
 * registered under its own name so tfjs's kernels are left as they are. Other backends use `tf.slice`,
 * whose contiguous slices are already cheap (a view on cpu). The gradient pads `dy` with zero rows.
 */
export function rowSlice<T extends tf.Tensor>(x: T, begin: number, size: number): T {
  const rows = x.shape[0];
  if (rows === undefined) throw new Error('rowSlice: expected a tensor of rank ≥ 1, got a scalar');
  if (!Number.isInteger(begin) || !Number.isInteger(size) || begin < 0 || size < 0 || begin + size > rows) {
    throw new Error(`rowSlice: rows [${begin}, ${begin + size}) out of range for shape [${x.shape.join(', ')}]`);
  }
  if (tf.getBackend() === 'wasm' && x.dtype === 'float32') {
    registerRowSlice();
    return tf.engine().runKernel(ROW_SLICE, { x }, { begin, size, rows } as unknown as tf.NamedAttrMap) as T;
  }
  const start = x.shape.map((_, i) => (i === 0 ? begin : 0));
  const extent = x.shape.map((d, i) => (i === 0 ? size : d));
  return tf.slice(x, start, extent) as T;
}

/** `x` cut along axis 0 into consecutive blocks of `sizes` rows (`tf.split` without wasm's copies). */
export function splitRows<T extends tf.Tensor>(x: T, sizes: readonly number[]): T[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== x.shape[0]) throw new Error(`splitRows: sizes add up to ${total}, tensor has ${x.shape[0]} rows`);
  const out: T[] = [];
  let begin = 0;
  for (const s of sizes) {
    out.push(rowSlice(x, begin, s));
    begin += s;
  }
  return out;
}

const ROW_SLICE = 'L2lRowSlice';
let registered = false;

/** The wasm backend's view of a tensor's data on its heap (public methods of tfjs-backend-wasm's BackendWasm). */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

function registerRowSlice(): void {
  if (registered) return;
  registered = true;
  // Another copy of this module (a second build of the package, say) may have registered them already.
  if (!tf.getKernel(ROW_SLICE, 'wasm')) tf.registerKernel({
    kernelName: ROW_SLICE,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const x = (inputs as { x: tf.TensorInfo }).x;
      const { begin, size } = attrs as unknown as { begin: number; size: number };
      const wasm = backend as unknown as WasmHeapBackend;
      const shape = x.shape.slice();
      const rowSize = shape.slice(1).reduce((a, b) => a * b, 1);
      shape[0] = size;
      const out = wasm.makeOutput(shape, x.dtype);
      if (size * rowSize > 0) {
        // Views taken after makeOutput: allocating may grow the heap and detach older views.
        const src = wasm.typedArrayFromHeap(x);
        wasm.typedArrayFromHeap(out).set(src.subarray(begin * rowSize, (begin + size) * rowSize));
      }
      return out;
    },
  });
  if (!tf.getGradient(ROW_SLICE)) tf.registerGradient({
    kernelName: ROW_SLICE,
    gradFunc: (dy, _saved, attrs) => {
      const { begin, size, rows } = attrs as unknown as { begin: number; size: number; rows: number };
      const d = dy as tf.Tensor;
      const paddings = d.shape.map((_, i): [number, number] => (i === 0 ? [begin, rows - begin - size] : [0, 0]));
      return { x: () => tf.pad(d, paddings) };
    },
  });
}
