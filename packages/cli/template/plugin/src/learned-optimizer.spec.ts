import { checkMetaOptimizer } from '@l2l/core/testing';
import { scaledMomentum } from './learned-optimizer';

describe('example-scaled-momentum', () => {
  it('honours the learned-optimizer contracts (meta-gradients, weights, coordinatewise)', () => checkMetaOptimizer(scaledMomentum));
});
