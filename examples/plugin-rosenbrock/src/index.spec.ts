import { checkPlugin, checkTaskFamily } from '@l2l/core/testing';
import plugin, { rosenbrockFamily } from './index';

describe('l2l-plugin-rosenbrock', () => {
  it('loads as a plugin and its family honours the task contracts (default options)', async () => {
    const components = await checkPlugin(plugin);
    expect(components.map((c) => `${c.kind}:${c.type}`)).toEqual(['optimizee:rosenbrock']);
  });

  it('honours the task contracts with other options', async () => {
    await checkTaskFamily(rosenbrockFamily, { options: { dims: 5, a: 1, b: [50, 150], init: 'uniform', initMean: 0, initScale: 2 } });
  });

  it('computes the Rosenbrock function', () => {
    const family = rosenbrockFamily.create({ dims: 3, a: 1, b: 100, init: 'normal', initMean: -1, initScale: 0.5 }, { seed: 0, baseDir: '.' });
    const task = family.build(family.sample(0, 'train'));
    const tf = require('@tensorflow/tfjs-core') as typeof import('@tensorflow/tfjs-core');
    // f(1, 1, 1) = 0 (the minimum); f(0, 0, 0) = 2·(a − 0)² = 2.
    expect(task.loss({ x: tf.tensor1d([1, 1, 1]) }, {}).dataSync()[0]).toBeCloseTo(0);
    expect(task.loss({ x: tf.tensor1d([0, 0, 0]) }, {}).dataSync()[0]).toBeCloseTo(2);
    // f(-1, 1, 0): b·(1 − 1)² + (1 + 1)² + b·(0 − 1)² + (1 − 1)² = 4 + 100.
    expect(task.loss({ x: tf.tensor1d([-1, 1, 0]) }, {}).dataSync()[0]).toBeCloseTo(104);
  });
});
