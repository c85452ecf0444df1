import { defineComponent } from '@l2l/core';
import { NormalizedHistoryMetaOptimizer } from './normalized-history';
import { NORMALIZED_HISTORY_OPTIONS_SCHEMA, type NormalizedHistoryOptions } from './options';
import { mlpEstimate } from '../common/estimate';

/** `{ "type": "normalized-history" }`: steps from normalised histories of parameters and gradients. */
export const normalizedHistoryComponent = defineComponent<NormalizedHistoryOptions>()({
  kind: 'meta-optimizer',
  fusedKernel: 'wasm normalized-history (SIMD, FMA where available)',
  type: 'normalized-history',
  description:
    'Normalised-history optimizer (thesis "Learning to Optimize Deep Neural Networks", ch. 3): a per-coordinate MLP over the last k parameters and gradients picks a step around the midpoint of the parameter history',
  schema: NORMALIZED_HISTORY_OPTIONS_SCHEMA,
  create: (options, ctx) => new NormalizedHistoryMetaOptimizer(options, ctx.seed),
  // The gradient and parameter histories per coordinate, the features made of them.
  estimate: (o) => mlpEstimate(2 * o.historySize + o.magnitudes.length, o.hidden, 2 * o.historySize),
});
