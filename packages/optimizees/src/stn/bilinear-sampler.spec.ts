import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend } from '@l2l/core';
import { bilinearSample, IDENTITY_THETA } from './bilinear-sampler';

afterAll(async () => {
  await useBackend('cpu');
});

function values(n: number, seed: number): Float32Array {
  const rng = Rng.from(seed, 'sampler-spec');
  return Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1);
}

/** Independent bilinear sample of one point (pixel coordinates), zero outside: the textbook formula. */
function refSample(img: Float32Array, rows: number, cols: number, ch: number, c: number, px: number, py: number): number {
  const x0 = Math.floor(px);
  const y0 = Math.floor(py);
  let s = 0;
  for (const [xi, yi, w] of [
    [x0, y0, (x0 + 1 - px) * (y0 + 1 - py)],
    [x0 + 1, y0, (px - x0) * (y0 + 1 - py)],
    [x0, y0 + 1, (x0 + 1 - px) * (py - y0)],
    [x0 + 1, y0 + 1, (px - x0) * (py - y0)],
  ] as const) {
    if (xi >= 0 && xi < cols && yi >= 0 && yi < rows) s += w * img[(yi * cols + xi) * ch + c]!;
  }
  return s;
}

describe.each(['wasm', 'cpu'] as const)('bilinear sampler on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('the identity θ reproduces the images; a shift by one pixel moves them and reads zeros past the edge', () => {
    const img = values(2 * 4 * 5 * 3, 1);
    const [same, shifted] = tf.tidy(() => {
      const x = tf.tensor4d(img, [2, 4, 5, 3]);
      const id = tf.tensor2d([...IDENTITY_THETA, ...IDENTITY_THETA], [2, 6]);
      // x_s = x_t + 2/(cols − 1): one pixel to the right.
      const shift = tf.tensor2d([1, 0, 2 / 4, 0, 1, 0, 1, 0, 2 / 4, 0, 1, 0], [2, 6]);
      return [bilinearSample(x, id, 4, 5).dataSync().slice(), bilinearSample(x, shift, 4, 5).dataSync().slice()];
    });
    same.forEach((v, i) => expect(v).toBeCloseTo(img[i]!, 5));
    for (let b = 0; b < 2; b++)
      for (let r = 0; r < 4; r++)
        for (let c = 0; c < 5; c++)
          for (let k = 0; k < 3; k++) {
            const at = ((b * 4 + r) * 5 + c) * 3 + k;
            expect(shifted[at]!).toBeCloseTo(c < 4 ? img[at + 3]! : 0, 5);
          }
  });

  it('matches the textbook formula for a general θ and another output size', () => {
    const [rows, cols, ch] = [5, 6, 2];
    const img = values(rows * cols * ch, 2);
    const theta = [0.8, -0.3, 0.1, 0.25, 0.9, -0.2];
    const out = tf.tidy(() => bilinearSample(tf.tensor4d(img, [1, rows, cols, ch]), tf.tensor2d(theta, [1, 6]), 3, 4).dataSync().slice());
    for (let r = 0; r < 3; r++)
      for (let c = 0; c < 4; c++) {
        const [xt, yt] = [-1 + (2 * c) / 3, -1 + (2 * r) / 2];
        const xs = theta[0]! * xt + theta[1]! * yt + theta[2]!;
        const ys = theta[3]! * xt + theta[4]! * yt + theta[5]!;
        for (let k = 0; k < ch; k++) {
          expect(out[(r * 4 + c) * ch + k]!).toBeCloseTo(refSample(img, rows, cols, ch, k, ((xs + 1) * (cols - 1)) / 2, ((ys + 1) * (rows - 1)) / 2), 5);
        }
      }
  });

  it('gradients with respect to the images and θ match central finite differences; no tensor leaks', () => {
    const shape = [2, 5, 6, 2];
    const img = values(2 * 5 * 6 * 2, 3);
    // A transform that maps some points outside the image, so the zero padding is exercised too.
    const th = Float32Array.from([0.9, -0.2, 0.13, 0.3, 1.1, -0.07, 1.2, 0.1, -0.21, -0.15, 0.8, 0.17]);
    const weights = tf.tensor(values(2 * 4 * 5 * 2, 4), [2, 4, 5, 2]);
    const loss = (x: tf.Tensor, t: tf.Tensor) => tf.sum(tf.mul(bilinearSample(x as tf.Tensor4D, t as tf.Tensor2D, 4, 5), weights)) as tf.Scalar;
    const before = tf.memory().numTensors;
    const [gx, gt] = tf.tidy(() => tf.grads(loss)([tf.tensor(img, shape), tf.tensor(th, [2, 6])]).map((g) => g.dataSync().slice()));
    expect(tf.memory().numTensors).toBe(before);
    const fdAt = (xv: Float32Array, tv: Float32Array) => tf.tidy(() => loss(tf.tensor(xv, shape), tf.tensor(tv, [2, 6])).dataSync()[0]!);
    // The output is linear in the images: differences are exact up to rounding.
    for (let i = 0; i < img.length; i += 7) {
      const [p, m] = [img.slice(), img.slice()];
      p[i]! += 0.05;
      m[i]! -= 0.05;
      expect(Math.abs((fdAt(p, th) - fdAt(m, th)) / 0.1 - gx![i]!)).toBeLessThan(1e-3);
    }
    // Piecewise bilinear in θ: a small step rarely crosses a pixel boundary at these values.
    for (let i = 0; i < th.length; i++) {
      const [p, m] = [th.slice(), th.slice()];
      p[i]! += 1e-3;
      m[i]! -= 1e-3;
      expect(Math.abs((fdAt(img, p) - fdAt(img, m)) / 2e-3 - gt![i]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(gt![i]!)));
    }
    weights.dispose();
  });
});

it('gradients are the same on wasm and cpu', async () => {
  const img = values(3 * 7 * 7 * 1, 5);
  const th = Float32Array.from({ length: 18 }, (_, i) => IDENTITY_THETA[i % 6]! + 0.2 * Math.sin(i + 1));
  const run = () =>
    tf.tidy(() =>
      tf.grads((x: tf.Tensor, t: tf.Tensor) => tf.sum(tf.square(bilinearSample(x as tf.Tensor4D, t as tf.Tensor2D, 5, 5))))([tf.tensor(img, [3, 7, 7, 1]), tf.tensor(th, [3, 6])]).map((g) => g.dataSync().slice()),
    );
  await useBackend('cpu');
  const cpu = run();
  await useBackend('wasm');
  const wasm = run();
  for (let k = 0; k < 2; k++) wasm[k]!.forEach((v, i) => expect(Math.abs(v - cpu[k]![i]!)).toBeLessThan(1e-4));
});
