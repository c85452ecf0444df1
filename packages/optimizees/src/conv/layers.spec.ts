import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend, type NamedTensors } from '@l2l/core';
import { batchNorm, BATCH_NORM_EPSILON, convStack, convStackSpecs, denseStack, denseStackSpecs, initFromSpecs, pool, type ConvStack, type DenseStack, type Pooling } from './layers';

/**
 * Gradients of the conv building blocks on wasm (the default backend, which needed extra kernels) and
 * cpu: against each other and against central finite differences.
 */
afterAll(async () => {
  await useBackend('cpu');
});

function values(n: number, seed: number, scale = 1): Float32Array {
  const rng = Rng.from(seed, 'layers-spec');
  return Float32Array.from({ length: n }, () => scale * (2 * rng.uniform() - 1));
}

/** A fixed, non-uniform weighting of an output, so the loss weighs every position differently. */
function weigh(y: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(y, tf.cos(tf.mul(tf.range(0, y.size).reshape(y.shape), 0.37)))) as tf.Scalar;
}

/** Gradient of `loss` at `x0` (shape `shape`) and central differences of it, float32 all along. */
function gradAndFd(loss: (x: tf.Tensor) => tf.Scalar, x0: Float32Array, shape: number[], h: number): { g: Float32Array; fd: Float32Array } {
  const g = tf.tidy(() => tf.grad(loss)(tf.tensor(x0, shape)).dataSync() as Float32Array);
  const fd = new Float32Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const at = (d: number) => {
      const p = x0.slice();
      p[i]! += d;
      return tf.tidy(() => loss(tf.tensor(p, shape)).dataSync()[0]!);
    };
    fd[i] = (at(h) - at(-h)) / (2 * h);
  }
  return { g, fd };
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  expect(worst).toBeLessThan(tol);
}

describe.each(['wasm', 'cpu'] as const)('conv layer gradients on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('avg pooling at an odd edge averages the pixels inside the image (TensorFlow\'s SAME)', () => {
    const y = tf.tidy(() => pool(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]), 'avg').dataSync().slice());
    expect(Array.from(y)).toEqual([3, 4.5, 7.5, 9]);
  });

  it.each(['max', 'avg'] as Pooling[])('%s pooling (2×2, stride 2, SAME, odd sizes) matches finite differences', (pooling) => {
    const shape = [2, 5, 4, 3];
    // Distinct values well apart (so a max never switches under the ±h probe), mostly negative.
    const x0 = Float32Array.from({ length: 120 }, (_, i) => ((i * 37) % 120) / 10 - 9);
    const { g, fd } = gradAndFd((x) => weigh(pool(x as tf.Tensor4D, pooling)), x0, shape, 1e-2);
    expectClose(g, fd, 2e-3);
  });

  it('batch norm (batch statistics, offset) matches finite differences in its input and its offset', () => {
    const shape = [4, 3, 2, 3];
    const x0 = values(72, 1, 2);
    const offset = tf.tensor1d([0.1, -0.2, 0.3]);
    const dx = gradAndFd((x) => weigh(batchNorm(x, offset)), x0, shape, 1e-2);
    expectClose(dx.g, dx.fd, 5e-3);
    const x = tf.tensor(x0, shape);
    const db = gradAndFd((o) => weigh(batchNorm(x, o)), Float32Array.from([0.1, -0.2, 0.3]), [3], 1e-2);
    expectClose(db.g, db.fd, 2e-3);
    // Normalised: each channel has mean `offset` and variance v / (v + ε) ≈ 1.
    const y = tf.tidy(() => batchNorm(x, offset).reshape([-1, 3]));
    const m = tf.tidy(() => tf.moments(y, 0));
    expectClose(m.mean.dataSync(), [0.1, -0.2, 0.3], 1e-5);
    expect(Math.max(...m.variance.dataSync())).toBeLessThan(1);
    expect(Math.min(...m.variance.dataSync())).toBeGreaterThan(1 - 20 * BATCH_NORM_EPSILON);
    tf.dispose([x, offset, y, m.mean, m.variance]);
  });

  it('a conv stack with batch norm and max pooling, then dense layers: every parameter gradient matches finite differences', () => {
    const conv: ConvStack = { prefix: 'c', channels: [3, 2], kernelSize: 3, padding: 'same', pooling: 'max', batchNorm: true, activation: 'tanh' };
    const dense: DenseStack = { prefix: 'd', hidden: [4], outputs: 3, batchNorm: true, activation: 'tanh' };
    const specs = [...convStackSpecs(conv, 2), ...denseStackSpecs(dense, 2 * 2 * 2)];
    const params = initFromSpecs(specs, 'glorot-uniform', 0.01, Rng.from(3, 'net'));
    const x = tf.tensor4d(values(3 * 6 * 5 * 2, 4), [3, 6, 5, 2]);
    const lossWith = (p: NamedTensors) => weigh(denseStack(p, dense, tf.reshape(convStack(p, conv, x), [3, -1]) as tf.Tensor2D));
    const before = tf.memory().numTensors;
    for (const name of ['c0/kernel', 'c1/kernel', 'c0/offset', 'd0/kernel', 'd0/offset', 'dout/kernel', 'dout/bias']) {
      const p0 = params[name]!;
      const { g, fd } = gradAndFd((v) => lossWith({ ...params, [name]: v }), p0.dataSync() as Float32Array, p0.shape, 1e-2);
      // tanh keeps it smooth; max pooling can switch winners only on near-ties, which these values avoid.
      expectClose(g, fd, 2e-2);
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, ...Object.values(params)]);
  });
});

it('a conv net gradient (conv, batch norm, ReLU, max pool, dense) is the same on wasm and cpu', async () => {
  const conv: ConvStack = { prefix: 'conv', channels: [4, 4], kernelSize: 5, padding: 'same', pooling: 'max', batchNorm: true, activation: 'relu' };
  const dense: DenseStack = { prefix: 'dense', hidden: [8], outputs: 10, batchNorm: true, activation: 'relu' };
  const specs = [...convStackSpecs(conv, 3), ...denseStackSpecs(dense, 3 * 3 * 4)];
  const xv = values(8 * 10 * 10 * 3, 9);
  const run = () =>
    tf.tidy(() => {
      const params = initFromSpecs(specs, 'he-normal', 0.01, Rng.from(5, 'net'));
      const x = tf.tensor4d(xv, [8, 10, 10, 3]);
      const names = Object.keys(params);
      const loss = (...ts: tf.Tensor[]) => {
        const p = Object.fromEntries(names.map((n, i) => [n, ts[i]!]));
        return weigh(denseStack(p, dense, tf.reshape(convStack(p, conv, x), [8, -1]) as tf.Tensor2D));
      };
      return tf.grads(loss)(names.map((n) => params[n]!)).map((t) => t.dataSync().slice());
    });
  await useBackend('cpu');
  const cpu = run();
  await useBackend('wasm');
  const wasm = run();
  expect(wasm.length).toBe(specs.length);
  wasm.forEach((w, i) => expectClose(w, cpu[i]!, 1e-3));
});
