import { defineComponent } from '@l2l/core';
import { LstmMetaOptimizer } from './lstm';
import { LSTM_OPTIONS_SCHEMA, type LstmOptions } from './options';
import { lstmStackEstimate } from '../common/estimate';

/** `{ "type": "lstm" }`: the coordinatewise LSTM optimizer of Andrychowicz et al. 2016. */
export const lstmComponent = defineComponent<LstmOptions>()({
  kind: 'meta-optimizer',
  fusedKernel: 'wasm lstm-stack (SIMD, FMA where available)',
  type: 'lstm',
  description: 'Coordinatewise 2-layer LSTM optimizer (Andrychowicz et al. 2016), weights shared across coordinates',
  schema: LSTM_OPTIONS_SCHEMA,
  create: (options, ctx) => new LstmMetaOptimizer(options, ctx.seed),
  estimate: (o) => lstmStackEstimate(o.preprocessing === 'logAndSign' ? 2 : 1, o.hidden, o.layers, 0, o.preprocessing === 'logAndSign' ? 2 : 1),
});
