import { componentsModule } from '@l2l/core';

/** @l2l/baselines's wiring: every component this package contributes, in one list. */
export const baselinesModule = componentsModule({
  source: '@l2l/baselines',
  components: [],
});
