import { componentsModule } from '@l2l/core';
import { lstmComponent } from './lstm';
import { multiscaleAdamComponent } from './multiscale-adam';
import { normalizedHistoryComponent } from './normalized-history';
import { perGroupComponent } from './per-group';
import { rnnpropComponent } from './rnnprop';

/** @l2l/meta-optimizers's wiring: every component this package contributes, in one list. */
export const metaOptimizersModule = componentsModule({
  source: '@l2l/meta-optimizers',
  components: [lstmComponent, rnnpropComponent, normalizedHistoryComponent, multiscaleAdamComponent, perGroupComponent],
});
