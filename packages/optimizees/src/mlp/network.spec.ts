import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend } from '@l2l/core';
import { matMulExplicitGrad } from './network';

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
});
