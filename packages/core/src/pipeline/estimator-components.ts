import type { JsonSchema } from '../schema/validate';
import { BUILTIN_ESTIMATORS, ES_DEFAULTS, type EsOptions } from '../engine/estimators';
import { defineComponent, type ComponentContribution } from '../registry/component';

const esSchema = (what: string): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  properties: {
    sigma: { type: 'number', exclusiveMinimum: 0, default: ES_DEFAULTS.sigma, description: `Standard deviation σ of the Gaussian perturbation of every weight of φ (${what}).` },
    samples: { type: 'integer', minimum: 1, default: ES_DEFAULTS.samples, description: 'Antithetic pairs per task and outer step (2 forward runs each); more pairs, less variance, more time.' },
    metric: {
      type: ['string', 'null'],
      default: ES_DEFAULTS.metric,
      description:
        "The meta-objective: null for the training losses (training.lossWeights: the sum of a truncation's losses, or its last); \"fullLoss\" for the task's loss over all its data at the truncation's end, or the name of one of the task's metrics (testAccuracy, say) — ES needs no derivative of it.",
    },
  },
});

/** The built-in estimators (engine/estimators) as registry components of kind "estimator"; core's own contribution. */
export const coreComponents: ComponentContribution = {
  source: '@l2l/core',
  components: [
    defineComponent<Record<string, never>>()({
      kind: 'estimator',
      type: 'tbptt',
      description: 'Truncated backpropagation through time: the exact gradient of each truncation (first- or second-order, checkpointing, workers, fused kernels); biased over short truncations. The default.',
      schema: { type: 'object', additionalProperties: false, properties: {} },
      create: () => BUILTIN_ESTIMATORS.tbptt({}),
    }),
    defineComponent<EsOptions>()({
      kind: 'estimator',
      type: 'es',
      description: 'Antithetic evolution strategies over truncated unrolls: forward passes only (on the fused kernel where the meta-optimizer has one), any meta-objective; biased over short truncations like tbptt.',
      schema: esSchema('the ES smoothing scale'),
      create: (options) => BUILTIN_ESTIMATORS.es(options),
    }),
    defineComponent<EsOptions>()({
      kind: 'estimator',
      type: 'pes',
      description: 'Persistent evolution strategies (Vicol et al. 2021): unbiased over the whole episode from truncated unrolls, forward passes only (on the fused kernel where the meta-optimizer has one); more variance the more truncations.',
      schema: esSchema('the PES smoothing scale'),
      create: (options) => BUILTIN_ESTIMATORS.pes(options),
    }),
  ],
};
