import { defineComponent } from '@l2l/core';
import { RnnpropMetaOptimizer } from './rnnprop';
import { RNNPROP_OPTIONS_SCHEMA, type RnnpropOptions } from './options';
import { lstmStackEstimate } from '../common/estimate';

/** `{ "type": "rnnprop" }`: RNNprop of Lv, Jiang & Li 2017. */
export const rnnpropComponent = defineComponent<RnnpropOptions>()({
  kind: 'meta-optimizer',
  fusedKernel: 'wasm lstm-stack (SIMD, FMA where available)',
  type: 'rnnprop',
  description: 'RNNprop (Lv et al. 2017): Adam-normalised inputs, ELU layer, 2-layer coordinatewise LSTM, steps −α·tanh(a)',
  schema: RNNPROP_OPTIONS_SCHEMA,
  create: (options, ctx) => new RnnpropMetaOptimizer(options, ctx.seed),
  // Adam's two moments per coordinate besides the LSTM's state.
  estimate: (o) => lstmStackEstimate(o.inputUnits, o.hidden, o.layers, 2),
});
