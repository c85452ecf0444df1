import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random';
import { useBackend } from '../backend';
import { registerWasmKernels, WASM_EXTRA_KERNELS, WASM_REPLACED_KERNELS } from '.';

/** Values in [-1, 1) from a seeded stream. */
function values(n: number, seed: number): Float32Array {
  const rng = Rng.from(seed, 'wasm-kernels-spec');
  return Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1);
}

async function onBackend<T>(name: 'wasm' | 'cpu', fn: () => T): Promise<T> {
  await useBackend(name);
  return fn();
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

afterAll(async () => {
  await useBackend('cpu');
});

describe('wasm extra kernels', () => {
  it('are in place once useBackend loads wasm, replacing tfjs\'s MaxPoolGrad and Conv2DBackpropInput, and a second registration changes nothing', async () => {
    await useBackend('wasm');
    for (const k of [...WASM_EXTRA_KERNELS, ...WASM_REPLACED_KERNELS]) expect(tf.getKernel(k.kernelName, 'wasm')?.kernelFunc).toBe(k.kernelFunc);
    expect(registerWasmKernels()).toEqual([]);
  });

  it('max pooling gradients on wasm match cpu, all-negative windows (where tfjs\'s wasm kernel passes nothing), padding and strides included', async () => {
    const cases: Array<[number[], number, number, 'same' | 'valid']> = [
      [[1, 4, 4, 1], 2, 2, 'same'],
      [[2, 5, 7, 3], 2, 2, 'same'],
      [[2, 6, 5, 2], 3, 2, 'same'],
      [[1, 7, 7, 2], 3, 1, 'valid'],
    ];
    for (const [shape, size, stride, pad] of cases) {
      // Mostly negative values, so many windows hold no positive number.
      const xv = values(tf.util.sizeFromShape(shape), 7).map((v) => v - 0.6);
      const grad = () =>
        tf.tidy(() => {
          const x = tf.tensor(xv, shape);
          return tf.grad((a: tf.Tensor) => {
            const y = tf.maxPool(a as tf.Tensor4D, size, stride, pad);
            return tf.sum(tf.mul(y, tf.sin(tf.range(0, y.size).reshape(y.shape))));
          })(x).dataSync().slice();
        });
      const cpu = await onBackend('cpu', grad);
      const wasm = await onBackend('wasm', grad);
      expect(maxAbsDiff(wasm, cpu)).toBeLessThan(1e-6);
    }
  });

  // [x shape, filter shape, strides, pad]: SAME with odd/even sizes pads unevenly; stride 2 on an odd
  // size leaves rows the forward pass never reads.
  const cases: Array<[[number, number, number, number], [number, number, number, number], number, 'same' | 'valid' | number]> = [
    [[2, 6, 5, 3], [3, 3, 3, 4], 1, 'same'],
    [[3, 6, 5, 2], [3, 3, 2, 3], 1, 'same'],
    [[3, 8, 8, 2], [5, 5, 2, 3], 1, 'same'],
    [[2, 7, 6, 2], [3, 2, 2, 3], 1, 'valid'],
    [[2, 7, 7, 3], [3, 3, 3, 2], 2, 'same'],
    [[1, 9, 8, 2], [4, 3, 2, 2], 2, 'valid'],
    [[2, 5, 5, 1], [3, 3, 1, 2], 3, 1],
    // Padding wider than the filter: the input gradient cuts rows of dy instead of padding it.
    [[1, 4, 5, 2], [3, 3, 2, 2], 1, 4],
    [[2, 6, 6, 3], [2, 2, 3, 2], 2, 'same'],
  ];

  it.each(cases)('conv2d filter and input gradients on wasm match cpu: x %j, filter %j, stride %j, pad %j', async (xShape, fShape, stride, pad) => {
    const xv = values(tf.util.sizeFromShape(xShape), 1);
    const fv = values(tf.util.sizeFromShape(fShape), 2);
    const grads = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(xv, xShape);
        const f = tf.tensor4d(fv, fShape);
        // A non-uniform upstream gradient, so every output position weighs differently.
        const loss = (a: tf.Tensor4D, b: tf.Tensor4D) => {
          const y = tf.conv2d(a, b, stride, pad);
          return tf.sum(tf.mul(y, tf.sin(tf.range(0, y.size).reshape(y.shape))));
        };
        const [gx, gf] = tf.grads(loss as (...a: tf.Tensor[]) => tf.Tensor)([x, f]);
        return [gx!.dataSync().slice(), gf!.dataSync().slice()];
      });
    const cpu = await onBackend('cpu', grads);
    const before = await onBackend('wasm', () => tf.memory().numTensors);
    const wasm = await onBackend('wasm', grads);
    expect(tf.memory().numTensors).toBe(before);
    expect(maxAbsDiff(wasm[0]!, cpu[0]!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(wasm[1]!, cpu[1]!)).toBeLessThan(1e-4);
  });

  // The loss Σ conv2d(x, f)² is quadratic in each argument, so central differences are exact up to float32 rounding.
  it.each([
    ['filter', 2],
    ['filter', 1],
    ['input', 1],
    ['input', 2],
  ] as const)('conv2d %s gradient on wasm matches central finite differences of the loss, stride %d', async (of, stride) => {
    await useBackend('wasm');
    const xShape: [number, number, number, number] = [2, 5, 6, 2];
    const fShape: [number, number, number, number] = [3, 3, 2, 3];
    const xv = values(tf.util.sizeFromShape(xShape), 3 + stride);
    const fv = values(tf.util.sizeFromShape(fShape), 4 + stride);
    const lossAt = (x: Float32Array, f: Float32Array) => tf.tidy(() => tf.sum(tf.square(tf.conv2d(tf.tensor4d(x, xShape), tf.tensor4d(f, fShape), stride, 'same'))) as tf.Scalar);
    const g = tf.tidy(() => {
      const [x, f] = [tf.tensor4d(xv, xShape), tf.tensor4d(fv, fShape)];
      const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, 'same'))) as tf.Scalar;
      return tf.grads(loss)([x, f])[of === 'input' ? 0 : 1]!.dataSync().slice();
    });
    const at = of === 'input' ? xv : fv;
    const h = 1e-2;
    for (let i = 0; i < at.length; i++) {
      const shifted = (d: number) => {
        const p = at.slice();
        p[i]! += d;
        return tf.tidy(() => (of === 'input' ? lossAt(p, fv) : lossAt(xv, p)).dataSync()[0]!);
      };
      expect(Math.abs((shifted(h) - shifted(-h)) / (2 * h) - g[i]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(g[i]!)));
    }
  });

  it('gather gradients (UnsortedSegmentSum) on wasm match cpu and a hand sum, repeats and all', async () => {
    const table = values(6 * 3, 5);
    const idx = [4, 0, 4, 2, 4, 5, 0];
    const up = values(idx.length * 3, 6);
    const grad = () =>
      tf.tidy(() => {
        const t = tf.tensor2d(table, [6, 3]);
        const i = tf.tensor1d(idx, 'int32');
        const dy = tf.tensor2d(up, [idx.length, 3]);
        return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.gather(a, i), dy)))(t).dataSync().slice();
      });
    const cpu = await onBackend('cpu', grad);
    const wasm = await onBackend('wasm', grad);
    const hand = new Float32Array(18);
    idx.forEach((row, k) => {
      for (let c = 0; c < 3; c++) hand[row * 3 + c]! += up[k * 3 + c]!;
    });
    expect(maxAbsDiff(wasm, hand)).toBeLessThan(1e-6);
    expect(maxAbsDiff(cpu, hand)).toBeLessThan(1e-6);
  });

  it('unsortedSegmentSum on wasm drops ids outside [0, numSegments) and handles int32 and inner dims', async () => {
    await useBackend('wasm');
    const out = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2], 'int32'), tf.tensor1d([2, 0, 2, 1], 'int32'), 3));
    expect(out.dtype).toBe('int32');
    expect(Array.from(out.dataSync())).toEqual([3, 4, 7, 8, 1 + 5, 2 + 6]);
    out.dispose();
    const dropped = tf.tidy(() => tf.unsortedSegmentSum(tf.tensor1d([1, 2, 3]), tf.tensor1d([0, 5, 1], 'int32'), 2));
    expect(Array.from(dropped.dataSync())).toEqual([1, 3]);
    dropped.dispose();
  });
});
