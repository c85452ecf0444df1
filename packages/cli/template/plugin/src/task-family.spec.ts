import * as tf from '@tensorflow/tfjs-core';
import { checkTaskFamily } from '@l2l/core/testing';
import { parabolasFamily } from './task-family';

describe('example-parabolas', () => {
  it('honours the task contracts', () => checkTaskFamily(parabolasFamily, { options: { dims: 3 } }));

  it('is Σ a(x − b)², zero at b', () => {
    const family = parabolasFamily.create({ dims: 2 }, { seed: 0, baseDir: '.' });
    const config = family.sample(0, 'train') as unknown as { a: number[]; b: number[] };
    const task = family.build(family.sample(0, 'train'));
    const at = (x: number[]) => task.loss({ x: tf.tensor1d(x) }, {}).dataSync()[0]!;
    expect(at(config.b)).toBeCloseTo(0, 6);
    expect(at([config.b[0]! + 1, config.b[1]!])).toBeCloseTo(config.a[0]!, 5);
    task.dispose?.();
  });
});
