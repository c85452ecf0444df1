import * as tf from '@tensorflow/tfjs';
import { useBackend } from '@l2l/core';
import { learnedOptimizer, listPretrained } from './index';

/**
 * The "Where it fails" of each card (checkpoints/<name>/card.md), measured: two small regressions fitted with
 * model.fit (a 4-8-1 tanh MLP, 64 examples, batches of 16, 30 epochs), against Adam at its usual learning
 * rates. Prints the card's table; a checkpoint that stops behaving as its card says fails here (update the card).
 */
const TARGET = [[1], [-0.5], [0.25], [2]];

/** What each card says, as assertions on (learned losses per epoch, Adam's per learning rate). */
const CLAIMS: Record<string, (learned: number[], adam: number[][]) => void> = {
  // Behind Adam at every learning rate after 30 epochs; its first epoch's loss well above Adam's at any rate (its first steps overshoot).
  'quadratic-lstm': (learned, adam) => {
    for (const a of adam) expect(learned[29]).toBeGreaterThan(a[29]!);
    expect(learned[0]).toBeGreaterThan(1.5 * Math.max(...adam.map((a) => a[0]!)));
  },
  // Ahead of Adam at every learning rate at epoch 10; at epoch 30 ahead of Adam 0.01 but behind Adam 0.03.
  'quadratic-rnnprop': (learned, adam) => {
    for (const a of adam) expect(learned[9]).toBeLessThan(a[9]!);
    expect(learned[29]).toBeLessThan(adam[0]![29]!);
    expect(learned[29]).toBeGreaterThan(adam[1]![29]!);
  },
  // Behind Adam at every learning rate after 30 epochs, though ahead of Adam 0.01 at epoch 10.
  'quadratic-multiscale-adam': (learned, adam) => {
    for (const a of adam) expect(learned[29]).toBeGreaterThan(a[29]!);
    expect(learned[9]).toBeLessThan(adam[0]![9]!);
  },
  // Ahead of Adam at every learning rate at epochs 10 and 30, but behind Adam 0.1 after the first epoch.
  'quadratic-normalized-history': (learned, adam) => {
    for (const a of adam) {
      expect(learned[9]).toBeLessThan(a[9]!);
      expect(learned[29]).toBeLessThan(a[29]!);
    }
    expect(learned[0]).toBeGreaterThan(adam[2]![0]!);
  },
};

async function losses(optimizer: tf.Optimizer, target: 'sin' | 'linear'): Promise<number[]> {
  const xs = tf.randomNormal([64, 4], 0, 1, 'float32', 7);
  const ys = tf.tidy(() => (target === 'sin' ? tf.sin(tf.matMul(xs, tf.tensor2d(TARGET))) : tf.matMul(xs, tf.tensor2d(TARGET))));
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 8, inputShape: [4], activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
    ],
  });
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const h = await model.fit(xs, ys, { epochs: 30, batchSize: 16, shuffle: false, verbose: 0 });
  model.dispose();
  optimizer.dispose();
  tf.dispose([xs, ys]);
  return h.history.loss as number[];
}

beforeAll(async () => {
  await useBackend('cpu');
});

it('has the claims of every checkpoint meta-trained on quadratics', () => {
  expect(Object.keys(CLAIMS).sort()).toEqual(listPretrained().map((p) => p.name).filter((n) => n.startsWith('quadratic-')));
});

it.each(Object.keys(CLAIMS).sort())('%s against Adam (lr 0.01, 0.03, 0.1) on small MLP regressions in model.fit', async (name) => {
  const rows: string[] = ['| target | optimizer | epoch 1 | epoch 10 | epoch 30 |', '| --- | --- | --- | --- | --- |'];
  const results: Array<{ target: string; learned: number[]; adam: number[][] }> = [];
  for (const target of ['sin', 'linear'] as const) {
    const learned = await losses(learnedOptimizer(`pretrained:${name}`), target);
    rows.push(`| ${target} | ${name} | ${learned[0]!.toFixed(3)} | ${learned[9]!.toFixed(3)} | ${learned[29]!.toFixed(3)} |`);
    const adam: number[][] = [];
    for (const lr of [0.01, 0.03, 0.1]) {
      adam.push(await losses(tf.train.adam(lr), target));
      rows.push(`| ${target} | adam ${lr} | ${adam.at(-1)![0]!.toFixed(3)} | ${adam.at(-1)![9]!.toFixed(3)} | ${adam.at(-1)![29]!.toFixed(3)} |`);
    }
    results.push({ target, learned, adam });
  }
  console.log(rows.join('\n'));
  for (const { learned, adam } of results) {
    CLAIMS[name]!(learned, adam);
  }
}, 300_000);
