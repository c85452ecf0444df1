import { defineComponent } from '@l2l/core';
import { MultiscaleAdamMetaOptimizer } from './multiscale-adam';
import { MULTISCALE_ADAM_OPTIONS_SCHEMA, type MultiscaleAdamOptions } from './options';
import { mlpEstimate } from '../common/estimate';

/** `{ "type": "multiscale-adam" }`: Adam at several timescales, combined by learned weights. */
export const multiscaleAdamComponent = defineComponent<MultiscaleAdamOptions>()({
  kind: 'meta-optimizer',
  fusedKernel: 'linear combiner: js; mlp combiner: wasm (SIMD, FMA where available); rnn combiner: none (tfjs tape)',
  type: 'multiscale-adam',
  description: 'Multiscale Adam (thesis "Learning to Optimize Deep Neural Networks", ch. 4): k Adam updates at different (β1, β2), combined by learned softmax weights',
  schema: MULTISCALE_ADAM_OPTIONS_SCHEMA,
  create: (options, ctx) => new MultiscaleAdamMetaOptimizer(options, ctx.seed),
  // Two moments per scale per coordinate, the combiner's hidden units per step.
  estimate: (o) => ({
    ...mlpEstimate(2 * o.betas.length, o.combiner === 'linear' ? 0 : o.hidden, 2 * o.betas.length + (o.combiner === 'rnn' ? o.hidden : 0)),
    // The linear and mlp combiners' kernels keep each step's k directions and the adjoint (linear-kernel.ts,
    // mlp-kernel.ts, which recomputes the MLP in its backward pass).
    ...(o.combiner !== 'rnn' && { fusedStepBytes: (o.betas.length + 1) * 4 }),
  }),
});
