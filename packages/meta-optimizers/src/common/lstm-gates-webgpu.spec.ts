import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend } from '@l2l/core';
import { lstmCellPacked } from './lstm-cell';
import { fusedGatesHere } from './lstm-gates-webgpu';

// Dawn compiles each new program on Mesa's software device where there is no GPU: seconds, once.
jest.setTimeout(120_000);

/** The cell's value and its gradients with respect to all four inputs, for a fixed upstream gradient. */
async function cellAndGrads(hidden: number, inputs: number, n: number): Promise<number[][]> {
  const r = new Rng(5);
  const t = (rows: number, cols: number, s = 1) => tf.tensor2d(r.normals(rows * cols, 0, s), [rows, cols]);
  const kernel = t(4 * hidden, inputs + hidden + 1, 0.7);
  const x = t(inputs, n);
  const h = t(hidden, n, 0.5);
  const c = t(hidden, n, 2);
  const w = t(2 * hidden, n);
  try {
    const value = lstmCellPacked(kernel, x, h, c);
    const grads = tf.grads((k: tf.Tensor, a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(lstmCellPacked(k as tf.Tensor2D, a as tf.Tensor2D, b as tf.Tensor2D, d as tf.Tensor2D), w)))([kernel, x, h, c]);
    const out = [Array.from(await value.data())];
    for (const g of grads) out.push(Array.from(await g.data()));
    tf.dispose([value, ...grads]);
    return out;
  } finally {
    tf.dispose([kernel, x, h, c, w]);
  }
}

describe('the LSTM cell on webgpu (fused gates)', () => {
  afterAll(async () => {
    await useBackend('cpu');
  });

  it.each([
    [3, 2, 37],
    [20, 2, 130],
  ])('gives the value and all four gradients of the unfused cell on cpu (H %i, X %i, N %i), with no leak', async (hidden, inputs, n) => {
    await useBackend('cpu');
    expect(fusedGatesHere()).toBe(false);
    const want = await cellAndGrads(hidden, inputs, n);
    await useBackend('webgpu');
    expect(fusedGatesHere()).toBe(true);
    const before = tf.memory().numTensors;
    const got = await cellAndGrads(hidden, inputs, n);
    expect(tf.memory().numTensors).toBe(before);
    got.forEach((part, p) => {
      expect(part).toHaveLength(want[p]!.length);
      part.forEach((v, i) => expect(Math.abs(v - want[p]![i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[p]![i]!))));
    });
  });

  it('runs the gates as one GPU program forward and one backward', async () => {
    await useBackend('webgpu');
    const backend = tf.backend() as unknown as { runWebGPUProgram: (program: { shaderKey: string }, ...rest: unknown[]) => unknown };
    const run = backend.runWebGPUProgram;
    const keys: string[] = [];
    backend.runWebGPUProgram = function (program, ...rest) {
      keys.push(program.shaderKey);
      return run.call(this, program, ...rest);
    };
    try {
      await cellAndGrads(4, 2, 9);
    } finally {
      backend.runWebGPUProgram = run;
    }
    // Forward twice (value, then under tf.grads), backward once.
    expect(keys.filter((k) => k === 'l2l_lstm_gates')).toHaveLength(2);
    expect(keys.filter((k) => k === 'l2l_lstm_gates_grad')).toHaveLength(1);
    // No unfused activations left: tfjs-webgpu's σ and tanh programs are unary ones.
    expect(keys.filter((k) => k.startsWith('unary_'))).toEqual([]);
  });
});
