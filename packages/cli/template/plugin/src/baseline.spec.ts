import * as tf from '@tensorflow/tfjs-core';
import { checkOptimizer } from '@l2l/core/testing';
import { signSgd } from './baseline';

describe('example-sign-sgd', () => {
  it('honours the optimizer contracts', () => checkOptimizer(signSgd));

  it('steps by lr·sign(g)', () => {
    const opt = signSgd.create({ learningRate: 0.5 }, { seed: 0, baseDir: '.' });
    const state = opt.init({ x: tf.tensor1d([1, 1]) });
    const next = opt.update(state, { x: tf.tensor1d([3, -0.1]) }, { step: 0, training: false });
    expect(Array.from(next.params.x!.dataSync())).toEqual([0.5, 1.5]);
  });
});
