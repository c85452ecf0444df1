import { componentsModule } from '@l2l/core';
import { convNet } from './conv/conv-net';
import { mnistMlp } from './mlp/mnist-mlp';
import { quadratic } from './quadratic/quadratic';
import { stn } from './stn/stn';

/** @l2l/optimizees's wiring: every component this package contributes, in one list. */
export const optimizeesModule = componentsModule({
  source: '@l2l/optimizees',
  components: [quadratic, mnistMlp, convNet, stn],
});
