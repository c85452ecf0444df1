import * as tf from '@tensorflow/tfjs-core';
import { BUILTIN_ESTIMATORS, defineComponent, useBackend, type EstimatorFactory, type MetaGradientEstimator } from '../index';
import { checkEstimator } from './index';

/** The built-in ES, optionally broken after the fact. */
function es(broken: { touchesWeights?: boolean; dropsWeight?: boolean; unseeded?: boolean; ignoresFirstTask?: boolean } = {}) {
  return defineComponent<Record<string, never>>()({
    kind: 'estimator',
    type: 'spec-es',
    description: 'ES under test',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create: (): EstimatorFactory => ({
      type: 'spec-es',
      create: (setup) => {
        const inner = BUILTIN_ESTIMATORS.es({ samples: 1, sigma: 0.01 }).create(setup);
        const estimator: MetaGradientEstimator = {
          type: 'spec-es',
          description: inner.description,
          init: (task, params, batchSeed) => inner.init(task, params, batchSeed),
          estimate: async (states, length, seed, firstTask) => {
            const r = await inner.estimate(states, length, broken.unseeded ? Math.floor(Math.random() * 1e9) : seed, broken.ignoresFirstTask ? 0 : firstTask);
            if (broken.touchesWeights) for (const v of Object.values(setup.meta.variables)) v.assign(tf.add(v, 0.1));
            if (broken.dropsWeight) {
              const [first] = Object.keys(r.grads);
              r.grads[first!]!.dispose();
              delete r.grads[first!];
            }
            return r;
          },
          dispose: () => inner.dispose(),
        };
        return estimator;
      },
    }),
  });
}

describe('checkEstimator', () => {
  beforeAll(() => useBackend('cpu'));
  it('passes an honest estimator', () => expect(checkEstimator(es())).resolves.toBeUndefined());
  it('fails one that moves the live weights', () => expect(checkEstimator(es({ touchesWeights: true }))).rejects.toThrow(/estimate changed the live weights/));
  it('fails one that leaves a weight without a gradient', () => expect(checkEstimator(es({ dropsWeight: true }))).rejects.toThrow(/estimate gave no gradient for weight "lr"/));
  it('fails one whose randomness ignores the seed', () => expect(checkEstimator(es({ unseeded: true }))).rejects.toThrow(/the same seeds gave different estimates/));
  it('fails one that draws the same noise for every shard (ignores firstTask)', () =>
    expect(checkEstimator(es({ ignoresFirstTask: true }))).rejects.toThrow(/estimating the tasks one at a time \(as shards do, with firstTask\) gave other estimates than all at once/));
});
