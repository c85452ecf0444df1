import type { ComponentConfig } from '../../contracts/json';
import type { EstimatorFactory } from '../../contracts/estimator';
import { UserError } from '../../errors';
import { checkEsOptions, EsEstimator, type EsOptions } from './es';
import { PesEstimator } from './pes';
import { TbpttEstimator } from './tbptt';

export * from './common';
export * from './es';
export * from './forward-path';
export * from './pes';
export * from './tbptt';

/** ES and PES options when none are given (the experiment file's schema, pipeline/core-components.ts, says the same). */
export const ES_DEFAULTS: EsOptions = { sigma: 0.01, samples: 4, metric: null };

/** The built-in estimators by type, from options already checked (or defaults). */
export const BUILTIN_ESTIMATORS: Readonly<Record<'tbptt' | 'es' | 'pes', (options: Partial<EsOptions>) => EstimatorFactory>> = {
  tbptt: () => ({ type: 'tbptt', create: (setup) => new TbpttEstimator(setup) }),
  es: (options) => ({ type: 'es', create: (setup) => new EsEstimator(setup, { ...ES_DEFAULTS, ...options }) }),
  pes: (options) => ({ type: 'pes', create: (setup) => new PesEstimator(setup, { ...ES_DEFAULTS, ...options }) }),
};

/**
 * The built-in estimator a `training.estimator` config names (tbptt when absent), for runs built in code; the
 * pipeline builds estimators from the registry instead, where the schema checks the options first.
 */
export function builtinEstimator(config: ComponentConfig | undefined): EstimatorFactory {
  const type = config?.type ?? 'tbptt';
  if (!Object.hasOwn(BUILTIN_ESTIMATORS, type)) {
    throw new UserError(`training.estimator: unknown estimator type "${type}" (built in: ${Object.keys(BUILTIN_ESTIMATORS).join(', ')}; a plugin's estimator is built by the pipeline)`);
  }
  const options = (config?.options ?? {}) as Record<string, unknown>;
  const known = type === 'tbptt' ? [] : Object.keys(ES_DEFAULTS);
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length) throw new UserError(`training.estimator (estimator "${type}"): unknown option ${unknown.map((k) => `"${k}"`).join(', ')}${known.length ? ` (known: ${known.join(', ')})` : ''}`);
  const factory = BUILTIN_ESTIMATORS[type as keyof typeof BUILTIN_ESTIMATORS](options as Partial<EsOptions>);
  if (type !== 'tbptt') checkEsOptions(type, { ...ES_DEFAULTS, ...options } as EsOptions);
  return factory;
}
