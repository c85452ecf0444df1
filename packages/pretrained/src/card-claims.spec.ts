import * as tf from '@tensorflow/tfjs';
import { useBackend } from '@l2l/core';
import { learnedOptimizer } from './index';

/**
 * The "Where it fails" of checkpoints/quadratic-lstm/card.md, measured: on two small regressions fitted with
 * model.fit (a 4-8-1 tanh MLP, 64 examples, batches of 16, 30 epochs), the quadratic LSTM falls far behind
 * Adam at its usual learning rates. Printed as the card's table; if a new checkpoint stops losing, update the card.
 */
const TARGET = [[1], [-0.5], [0.25], [2]];

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

it('quadratic-lstm loses to Adam (lr 0.01, 0.03, 0.1) on small MLP regressions in model.fit, as its card says', async () => {
  const rows: string[] = ['| target | optimizer | epoch 1 | epoch 10 | epoch 30 |', '| --- | --- | --- | --- | --- |'];
  for (const target of ['sin', 'linear'] as const) {
    const learned = await losses(learnedOptimizer('pretrained:quadratic-lstm'), target);
    rows.push(`| ${target} | quadratic-lstm | ${learned[0]!.toFixed(3)} | ${learned[9]!.toFixed(3)} | ${learned[29]!.toFixed(3)} |`);
    for (const lr of [0.01, 0.03, 0.1]) {
      const adam = await losses(tf.train.adam(lr), target);
      rows.push(`| ${target} | adam ${lr} | ${adam[0]!.toFixed(3)} | ${adam[9]!.toFixed(3)} | ${adam[29]!.toFixed(3)} |`);
      expect(learned[29]).toBeGreaterThan(adam[29]!);
    }
    // Its first epoch is worse than Adam's: it takes steps sized for quadratics, too large for these weights.
    expect(learned[0]).toBeGreaterThan(2);
  }
  console.log(rows.join('\n'));
}, 300_000);
