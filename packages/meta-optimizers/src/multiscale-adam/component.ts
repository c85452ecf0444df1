import { defineComponent } from '@l2l/core';
import { MultiscaleAdamMetaOptimizer } from './multiscale-adam';
import { MULTISCALE_ADAM_OPTIONS_SCHEMA, type MultiscaleAdamOptions } from './options';
import { mlpEstimate } from '../common/estimate';

/** `{ "type": "multiscale-adam" }`: Adam at several timescales, combined by learned weights. */
export const multiscaleAdamComponent = defineComponent<MultiscaleAdamOptions>()({
  kind: 'meta-optimizer',
  fusedKernel: 'linear combiner: js; mlp combiner: wasm multiscale-mlp; rnn combiner: wasm lstm-stack (SIMD, FMA where available)',
  type: 'multiscale-adam',
  description: 'Multiscale Adam (thesis "Learning to Optimize Deep Neural Networks", ch. 4): k Adam updates at different (β1, β2), combined by learned softmax weights',
  schema: MULTISCALE_ADAM_OPTIONS_SCHEMA,
  create: (options, ctx) => new MultiscaleAdamMetaOptimizer(options, ctx.seed),
  // Two moments per scale per coordinate, the combiner's hidden units per step.
  estimate: (o) => ({
    ...mlpEstimate(2 * o.betas.length, o.combiner === 'linear' ? 0 : o.hidden, 2 * o.betas.length + (o.combiner === 'rnn' ? o.hidden : 0)),
    // Every combiner's kernel keeps each step's k directions and the adjoint (linear-kernel.ts, mlp-kernel.ts,
    // the lstm-stack kernel for rnn, which also keeps the engine's copy of the adjoint and recomputes the rest).
    fusedStepBytes: (o.betas.length + (o.combiner === 'rnn' ? 2 : 1)) * 4,
  }),
});
