import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend } from '@l2l/core';
import { onCpuThenWebGpu } from '@l2l/core/testing';
import { lstmCellPacked } from './lstm-cell';
import { preprocessGradients } from './preprocess';
import { OUTER_CHUNKED_FROM, sumOfOuterProducts, webGpuKernelsHere } from './webgpu-kernels';

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

/** logAndSign features of `g` and the gradient of Σ w·features with respect to g, on the backend in use. */
async function logAndSignAndGrad(g: number[], k: number): Promise<number[][]> {
  const x = tf.tensor2d(g, [1, g.length]);
  const w = tf.tensor2d(g.flatMap((_, i) => [0.5 + i, -1 - i]), [2, g.length]);
  try {
    const value = preprocessGradients(x, 'logAndSign', k);
    const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(preprocessGradients(a as tf.Tensor2D, 'logAndSign', k), w)))(x);
    const out = [Array.from(await value.data()), Array.from(await grad.data())];
    tf.dispose([value, grad]);
    return out;
  } finally {
    tf.dispose([x, w]);
  }
}

/** The shader keys of the GPU programs `f` runs on the webgpu backend, in order. */
async function programsOf(f: () => Promise<unknown>): Promise<string[]> {
  const backend = tf.backend() as unknown as { runWebGPUProgram: (program: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  const keys: string[] = [];
  backend.runWebGPUProgram = function (program, ...rest) {
    keys.push(program.shaderKey);
    return run.call(this, program, ...rest);
  };
  try {
    await f();
  } finally {
    backend.runWebGPUProgram = run;
  }
  return keys;
}

/** Equal to 1e-6 relative, NaN where NaN, the same infinities. */
function expectSame(got: number[], want: number[]): void {
  expect(got).toHaveLength(want.length);
  got.forEach((v, i) => {
    const w = want[i]!;
    if (Number.isNaN(w) || !Number.isFinite(w)) expect(v).toBe(w);
    else expect(Math.abs(v - w)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(w)));
  });
}

describe('logAndSign on webgpu (one program)', () => {
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('gives the features and their gradient of the ops on cpu, at and around the threshold, 0, NaN and ±∞', async () => {
    const k = 10;
    const t = Math.fround(Math.exp(-k));
    const g = [0.3, -2e-3, 7, -7e-5, t, -t, t * 0.999, -t * 1.001, 0, -0.0, 1e-30, NaN, Infinity, -Infinity, 123.5];
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(() => logAndSignAndGrad(g, k));
    expectSame(got[0]!, want[0]!);
    expectSame(got[1]!, want[1]!);
    // Forward: one program (eleven unfused).
    const x = tf.tensor2d([0.5, -1e-6, 3], [1, 3]);
    const keys = await programsOf(async () => {
      const f = preprocessGradients(x, 'logAndSign', k);
      await f.data();
      f.dispose();
    });
    x.dispose();
    expect(keys).toEqual(['l2l_log_and_sign']);
  });
});

describe('the LSTM cell on webgpu (fused gates)', () => {
  afterAll(async () => {
    await useBackend('cpu');
  });

  it.each([
    [3, 2, 37],
    [20, 2, 130],
  ])('gives the value and all four gradients of the unfused cell on cpu (H %i, X %i, N %i), with no leak', async (hidden, inputs, n) => {
    const here: boolean[] = [];
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(async () => (here.push(webGpuKernelsHere()), cellAndGrads(hidden, inputs, n)));
    expect(here).toEqual([false, true]);
    got.forEach((part, p) => {
      expect(part).toHaveLength(want[p]!.length);
      part.forEach((v, i) => expect(Math.abs(v - want[p]![i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[p]![i]!))));
    });
  });

  it('runs the gates as one GPU program forward and one backward', async () => {
    await useBackend('webgpu');
    const keys = await programsOf(() => cellAndGrads(4, 2, 9));
    // Forward twice (value, then under tf.grads), backward once.
    expect(keys.filter((k) => k === 'l2l_lstm_gates')).toHaveLength(2);
    expect(keys.filter((k) => k === 'l2l_lstm_gates_grad')).toHaveLength(1);
    // No unfused activations left: tfjs-webgpu's σ and tanh programs are unary ones.
    expect(keys.filter((k) => k.startsWith('unary_'))).toEqual([]);
  });
});

describe('sumOfOuterProducts on webgpu (a weight gradient over many coordinates)', () => {
  afterAll(async () => {
    await useBackend('cpu');
  });

  /** a·zᵀ for a [8, n] and z [5, n] of one seed, on the backend in use, and the programs that ran. */
  async function product(n: number): Promise<{ values: number[]; programs: string[] }> {
    const r = new Rng(11);
    const a = tf.tensor2d(r.normals(8 * n, 0, 1), [8, n]);
    const z = tf.tensor2d(r.normals(5 * n, 0, 1), [5, n]);
    let values: number[] = [];
    try {
      const programs = await programsOf(async () => {
        const p = sumOfOuterProducts(a, z);
        values = Array.from(await p.data());
        p.dispose();
      });
      return { values, programs };
    } finally {
      tf.dispose([a, z]);
    }
  }

  it('sums a long row (not a multiple of the chunk) in chunks as cpu multiplies, the same on every run; short rows in one product', async () => {
    const n = OUTER_CHUNKED_FROM + 700;
    // Tensors and backend buffers left on webgpu fail it.
    const { cpu, webgpu } = await onCpuThenWebGpu(async () => [await product(n), await product(n), await product(3000)]);
    const [want, wantShort] = [cpu[0].values, cpu[2].values];
    const [got, again, short] = webgpu;
    expect(got.values).toHaveLength(40);
    // Sums of 66,236 products of normals: float32 rounding differs from cpu's order by ~1e-6 of the terms' scale.
    const close = (v: number[], w: number[]) => v.every((x, i) => Math.abs(x - w[i]!) <= 2e-3 + 1e-5 * Math.abs(w[i]!));
    expect(close(got.values, want)).toBe(true);
    // Chunked: no atomic split-K program, and a fixed order of additions.
    expect(got.programs.some((k) => /splitk/i.test(k))).toBe(false);
    expect(got.programs.filter((k) => k.startsWith('l2l_chunk_columns')).length).toBe(2);
    expect(again.values).toEqual(got.values);
    expect(close(short.values, wantShort)).toBe(true); // below OUTER_CHUNKED_FROM: tfjs's matMul
    expect(short.programs.length).toBeLessThanOrEqual(2);
  });
});
