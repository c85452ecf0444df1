import type { ComponentConfig } from '../../contracts/json';
import type { EstimatorFactory } from '../../contracts/estimator';
import { validateWithSchema, type JsonSchema } from '../../config/validate';
import { UserError } from '../../errors';
import { EsEstimator, type EsOptions } from './es';
import { PesEstimator } from './pes';
import { TbpttEstimator } from './tbptt';

export * from './common';
export * from './es';
export * from './pes';
export * from './tbptt';

/** A built-in estimator: what the registry's "estimator" components (pipeline) and MetaTrainer's default share. */
export interface BuiltinEstimator {
  readonly type: string;
  readonly description: string;
  readonly schema: JsonSchema;
  factory(options: Record<string, unknown>): EstimatorFactory;
}

const esSchema = (what: string): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  properties: {
    sigma: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: `Standard deviation σ of the Gaussian perturbation of every weight of φ (${what}).` },
    samples: { type: 'integer', minimum: 1, default: 4, description: 'Antithetic pairs per task and outer step (2 forward runs each); more pairs, less variance, more time.' },
    metric: {
      type: ['string', 'null'],
      default: null,
      description:
        "The meta-objective: null for the training losses (training.lossWeights: the sum of a truncation's losses, or its last); \"fullLoss\" for the task's loss over all its data at the truncation's end, or the name of one of the task's metrics (testAccuracy, say) — ES needs no derivative of it.",
    },
  },
});

export const BUILTIN_ESTIMATORS: readonly BuiltinEstimator[] = [
  {
    type: 'tbptt',
    description: 'Truncated backpropagation through time: the exact gradient of each truncation (first- or second-order, checkpointing, workers, fused kernels); biased over short truncations. The default.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    factory: () => ({ type: 'tbptt', create: (setup) => new TbpttEstimator(setup) }),
  },
  {
    type: 'es',
    description: 'Antithetic evolution strategies over truncated unrolls: forward passes only, any meta-objective; biased over short truncations like tbptt.',
    schema: esSchema('the ES smoothing scale'),
    factory: (options) => ({ type: 'es', create: (setup) => new EsEstimator(setup, options as unknown as EsOptions) }),
  },
  {
    type: 'pes',
    description: 'Persistent evolution strategies (Vicol et al. 2021): unbiased over the whole episode from truncated unrolls, forward passes only; more variance the more truncations.',
    schema: esSchema('the PES smoothing scale'),
    factory: (options) => ({ type: 'pes', create: (setup) => new PesEstimator(setup, options as unknown as EsOptions) }),
  },
];

/** The built-in estimator a `training.estimator` config names, options checked and completed with defaults. */
export function builtinEstimator(config: ComponentConfig | undefined): EstimatorFactory {
  const type = config?.type ?? 'tbptt';
  const found = BUILTIN_ESTIMATORS.find((b) => b.type === type);
  if (!found) {
    throw new UserError(`training.estimator: unknown estimator type "${type}" (built in: ${BUILTIN_ESTIMATORS.map((b) => b.type).join(', ')}; a plugin's estimator is built by the pipeline)`);
  }
  return found.factory(validateWithSchema(found.schema, config?.options ?? {}, `training.estimator (estimator "${type}")`));
}
