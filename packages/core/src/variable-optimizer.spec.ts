import * as tf from '@tensorflow/tfjs';
import { useBackend } from './backend';
import type { Optimizer } from './contracts/optimizer';
import { VariableOptimizer } from './variable-optimizer';

/** Momentum written out, so the expected values can be derived by hand. */
const momentum = (lr: number, mu: number): Optimizer => ({
  name: 'momentum',
  init: (params) => ({ params, slots: Object.fromEntries(Object.entries(params).map(([k, p]) => [k, tf.zerosLike(p)])), step: 0 }),
  update: (s, g) => {
    const slots = s.slots as Record<string, tf.Tensor>;
    const v = Object.fromEntries(Object.keys(s.params).map((k) => [k, tf.add(tf.mul(slots[k]!, mu), g[k]!)]));
    return { params: Object.fromEntries(Object.keys(s.params).map((k) => [k, tf.sub(s.params[k]!, tf.mul(v[k]!, lr))])), slots: v, step: s.step + 1 };
  },
});

beforeAll(async () => {
  await useBackend('cpu');
});

describe('VariableOptimizer', () => {
  it('updates variables as the functional optimizer says, keeping its state between steps', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const opt = new VariableOptimizer(momentum(0.1, 0.5), { w });
    // f = Σ w², g = 2w. Step 1: v = (2, −4), w = (0.8, −1.6). Step 2: v = 0.5·(2, −4) + (1.6, −3.2) = (2.6, −5.2), w = (0.54, −1.08).
    expect(opt.minimize(() => tf.sum(tf.square(w)))).toBeCloseTo(5, 5);
    const after1 = Array.from(w.dataSync());
    expect(after1[0]).toBeCloseTo(0.8, 6);
    expect(after1[1]).toBeCloseTo(-1.6, 6);
    opt.minimize(() => tf.sum(tf.square(w)));
    const after2 = Array.from(w.dataSync());
    expect(after2[0]).toBeCloseTo(0.54, 6);
    expect(after2[1]).toBeCloseTo(-1.08, 6);
    expect(opt.step).toBe(2);
    const before = tf.memory().numTensors;
    opt.minimize(() => tf.sum(tf.square(w)));
    expect(tf.memory().numTensors).toBe(before);
    opt.dispose();
    w.dispose();
  });

  it('trains a tfjs-layers model through its trainable weights as they come, inside the caller’s tf.tidy', () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2], kernelInitializer: 'zeros' })] });
    const xs = tf.tensor2d([[1, 0], [0, 1], [1, 1], [2, 1]]);
    const ys = tf.tensor2d([[3], [-1], [2], [5]]); // y = 3a − b
    const opt = new VariableOptimizer(momentum(0.05, 0.5), model.trainableWeights);
    const loss = () => tf.losses.meanSquaredError(ys, model.predict(xs) as tf.Tensor) as tf.Scalar;
    const first = tf.tidy(() => opt.minimize(loss));
    let last = first;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 200; i++) last = tf.tidy(() => opt.minimize(loss));
    expect(tf.memory().numTensors).toBe(before);
    expect(first).toBeCloseTo((9 + 1 + 4 + 25) / 4, 4);
    expect(last).toBeLessThan(1e-3);
    const [kernel] = model.getWeights().map((t) => Array.from(t.dataSync()));
    expect(kernel![0]).toBeCloseTo(3, 1);
    expect(kernel![1]).toBeCloseTo(-1, 1);
    opt.dispose();
    tf.dispose([xs, ys]);
    model.dispose();
  });

  it('refuses what is not a variable, naming what it got', () => {
    const t = tf.tensor1d([1]);
    expect(() => new VariableOptimizer(momentum(0.1, 0.5), [t as unknown as tf.Variable])).toThrow(/expected tf.Variables or tfjs-layers weights .*got \[object Object\]/);
    expect(() => new VariableOptimizer(momentum(0.1, 0.5), [])).toThrow(/no variables to optimize/);
    t.dispose();
  });
});
