import * as tf from '@tensorflow/tfjs-core';

/*
 * The LSTM cell's elementwise part as one GPU program each way, on tfjs's webgpu backend. Unfused, a cell's
 * gates take 15 programs forward (slices, three σ, two tanh, products, a sum, a concat) and about 20 backward;
 * every program is a launch, and for a coordinatewise optimizer's small tensors launches, not arithmetic, set a
 * GPU's pace. The formulas are tfjs-webgpu's own σ and tanh, in the order lstm-cell.ts computes them.
 *
 * The programs follow tfjs-backend-webgpu 4.22's program objects (variable names as storage buffers, `uniforms`
 * with each input's shape, `setOutputAtIndex`); the tests compare them with the unfused ops on the same backend.
 */

/** [h'; c'] ([2H, N]) from the gates' pre-activations a = K·[x; h; 1] ([4H, N], rows i, f, g, o) and c ([H, N]). */
export const LSTM_GATES = 'L2lLstmGates';
/**
 * From a, c and dy = [dh'; dc'] ([2H, N]): [da; dc] ([5H, N]), the pre-activations' adjoint (rows i, f, g, o)
 * and the previous cell state's.
 */
export const LSTM_GATES_GRAD = 'L2lLstmGatesGrad';

const WORKGROUP = 64;

const ACTIVATIONS = `
  fn l2lSigmoid(a : f32) -> f32 { return 1.0 / (1.0 + exp(-1.0 * a)); }
  fn l2lTanh(a : f32) -> f32 {
    let e2x = exp(-2.0 * abs(a));
    return sign(a) * (1.0 - e2x) / (1.0 + e2x);
  }`;

// Row r, column j of the output; the gates of unit u at column j; c' as lstm-cell.ts adds it.
const GATES = `
    let hidden = uniforms.cShape[0];
    let n = uniforms.cShape[1];
    let r = index / n;
    let j = index - r * n;
    let u = r % hidden;
    let gi = l2lSigmoid(A[u * n + j]);
    let gf = l2lSigmoid(A[(hidden + u) * n + j]);
    let gg = l2lTanh(A[(2 * hidden + u) * n + j]);
    let go = l2lSigmoid(A[(3 * hidden + u) * n + j]);
    let cp = C[u * n + j];
    let c2 = gf * cp + gi * gg;`;

const FORWARD = `${ACTIVATIONS}
  fn main(index : i32) {
    if (index < uniforms.size) {${GATES}
      if (r < hidden) {
        setOutputAtIndex(index, go * l2lTanh(c2));
      } else {
        setOutputAtIndex(index, c2);
      }
    }
  }`;

const BACKWARD = `${ACTIVATIONS}
  fn main(index : i32) {
    if (index < uniforms.size) {${GATES}
      let tc = l2lTanh(c2);
      let dh2 = DY[u * n + j];
      let dc2 = DY[(hidden + u) * n + j] + dh2 * go * (1.0 - tc * tc);
      let gate = r / hidden;
      var v = 0.0;
      if (gate == 0) {
        v = dc2 * gg * (gi * (1.0 - gi));
      } else if (gate == 1) {
        v = dc2 * cp * (gf * (1.0 - gf));
      } else if (gate == 2) {
        v = dc2 * gi * (1.0 - gg * gg);
      } else if (gate == 3) {
        v = dh2 * tc * (go * (1.0 - go));
      } else {
        v = dc2 * gf;
      }
      setOutputAtIndex(index, v);
    }
  }`;

/** What this file uses of tfjs-webgpu's backend (a public method of WebGPUBackend). */
interface WebGpuBackend {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], outputDtype: tf.DataType): tf.TensorInfo;
}

/** A flat elementwise program over `outputShape` with tfjs-webgpu's program fields. */
function program(key: string, variableNames: string[], outputShape: number[], code: string): object {
  const size = outputShape.reduce((a, b) => a * b, 1);
  return {
    variableNames,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(size / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    getUserCode: () => code,
  };
}

let registered = false;

/** Registers both kernels for the webgpu backend (once per process; another copy of this module may have). */
export function registerLstmGatesWebGpu(): void {
  if (registered) return;
  registered = true;
  if (!tf.getKernel(LSTM_GATES, 'webgpu')) {
    tf.registerKernel({
      kernelName: LSTM_GATES,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend }) => {
        const { a, c } = inputs as { a: tf.TensorInfo; c: tf.TensorInfo };
        const [hidden, n] = c.shape as [number, number];
        return (backend as unknown as WebGpuBackend).runWebGPUProgram(program('l2l_lstm_gates', ['A', 'C'], [2 * hidden, n], FORWARD), [a, c], 'float32');
      },
    });
  }
  if (!tf.getKernel(LSTM_GATES_GRAD, 'webgpu')) {
    tf.registerKernel({
      kernelName: LSTM_GATES_GRAD,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, backend }) => {
        const { a, c, dy } = inputs as { a: tf.TensorInfo; c: tf.TensorInfo; dy: tf.TensorInfo };
        const [hidden, n] = c.shape as [number, number];
        return (backend as unknown as WebGpuBackend).runWebGPUProgram(program('l2l_lstm_gates_grad', ['A', 'C', 'DY'], [5 * hidden, n], BACKWARD), [a, c, dy], 'float32');
      },
    });
  }
}

/** Whether the cell runs its gates as the fused programs here: on tfjs's webgpu backend. */
export function fusedGatesHere(): boolean {
  return tf.getBackend() === 'webgpu';
}

/** [h'; c'] from a and c (see LSTM_GATES). */
export function lstmGates(a: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor2D {
  registerLstmGatesWebGpu();
  return tf.engine().runKernel(LSTM_GATES, { a, c }) as tf.Tensor2D;
}

/** [da; dc] from a, c and dy (see LSTM_GATES_GRAD). */
export function lstmGatesGrad(a: tf.Tensor2D, c: tf.Tensor2D, dy: tf.Tensor2D): tf.Tensor2D {
  registerLstmGatesWebGpu();
  return tf.engine().runKernel(LSTM_GATES_GRAD, { a, c, dy }) as tf.Tensor2D;
}
