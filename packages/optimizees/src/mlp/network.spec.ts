import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend } from '@l2l/core';
import { matMulExplicitGrad, matMulOfData } from './network';

const flat = (t: tf.Tensor) => Array.from(t.dataSync());

function expectClose(actual: number[], expected: number[], tol: number): void {
  expect(actual).toHaveLength(expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  expect(scale).toBeGreaterThan(0);
  actual.forEach((v, i) => {
    if (!(Math.abs(v - expected[i]!) <= tol * scale)) throw new Error(`[${i}]: ${v} vs ${expected[i]}`);
  });
}

describe.each(['wasm', 'cpu'] as const)('matMulExplicitGrad on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  const rng = new Rng(3);
  const a = () => tf.tensor2d(rng.normals(6 * 5), [6, 5]);
  const b = () => tf.tensor2d(rng.normals(5 * 4), [5, 4]);

  it('computes tf.matMul, with the same first and second derivatives', () => {
    const [x, w, v, u] = [a(), b(), tf.tensor2d(rng.normals(6 * 4), [6, 4]), a()];
    // f(x, w) = Σ v ⊙ tanh(x·w): not linear, so second derivatives are not trivial.
    const f = (mm: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor2D) => (p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(v, tf.tanh(mm(p as tf.Tensor2D, q as tf.Tensor2D)))) as tf.Scalar;
    expectClose(flat(matMulExplicitGrad(x, w)), flat(tf.matMul(x, w)), 1e-6);
    const first = (mm: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor2D) => tf.grads(f(mm))([x, w]);
    const [gx, gw] = first(matMulExplicitGrad);
    const [rx, rw] = first(tf.matMul);
    expectClose(flat(gx!), flat(rx!), 1e-5);
    expectClose(flat(gw!), flat(rw!), 1e-5);
    // Hessian-vector product: d/dw of <∇ₓf, u>.
    const hvp = (mm: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor2D) =>
      tf.grad((q: tf.Tensor) => tf.sum(tf.mul(u, tf.grads(f(mm))([x, q])[0]!)) as tf.Scalar)(w);
    expectClose(flat(hvp(matMulExplicitGrad)), flat(hvp(tf.matMul)), 1e-5);
  });

  it('matMulOfData: tf.matMul, with its gradient and second derivatives in w; none for the data x (asking for one is an error)', () => {
    const [x, w, w2, u] = [a(), b(), tf.tensor2d(rng.normals(4 * 3), [4, 3]), b()];
    const before = tf.memory().numTensors;
    // A two-layer net, x → tanh(x·w) → ·w2, as the MLP's first layer sits in it.
    const f = (mm: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor2D) => (q: tf.Tensor, q2: tf.Tensor) =>
      tf.sum(tf.square(matMulExplicitGrad(tf.tanh(mm(x, q as tf.Tensor2D)), q2 as tf.Tensor2D))) as tf.Scalar;
    tf.tidy(() => {
      expect(flat(matMulOfData(x, w))).toEqual(flat(tf.matMul(x, w)));
      const [g, g2] = tf.grads(f(matMulOfData))([w, w2]);
      const [r, r2] = tf.grads(f(tf.matMul))([w, w2]);
      expectClose(flat(g!), flat(r!), 1e-6);
      expectClose(flat(g2!), flat(r2!), 1e-6);
      // A second derivative across the layers: d/dw2 of <∇_w f, u>.
      const mixed = (mm: (p: tf.Tensor2D, q: tf.Tensor2D) => tf.Tensor2D) => tf.grad((q2: tf.Tensor) => tf.sum(tf.mul(u, tf.grads(f(mm))([w, q2])[0]!)) as tf.Scalar)(w2);
      const m = mixed(matMulOfData);
      expect(Math.max(...flat(m).map(Math.abs))).toBeGreaterThan(1e-3);
      expectClose(flat(m), flat(mixed(tf.matMul)), 1e-5);
    });
    expect(tf.memory().numTensors).toBe(before);
    // (tfjs leaves the failed attempt's saved tensors behind, so this comes after the count.)
    expect(() => tf.tidy(() => tf.grad((p: tf.Tensor) => tf.sum(matMulOfData(p as tf.Tensor2D, w)) as tf.Scalar)(x))).toThrow(/Cannot compute gradient/);
  });
});
