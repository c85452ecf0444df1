import type { JsonSchema } from '../schema/validate';
import { BUILTIN_ESTIMATORS, ES_DEFAULTS, type EsOptions } from '../engine/estimators';
import {
  BUILTIN_SCHEDULES,
  DECAY_DEFAULTS,
  EXPONENTIAL_DEFAULTS,
  STEPS_DEFAULTS,
  type DecayOptions,
  type ExponentialOptions,
  type StepsOptions,
} from '../engine/schedules';
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

const warmupSchema: JsonSchema = {
  type: 'integer',
  minimum: 0,
  default: DECAY_DEFAULTS.warmupSteps,
  description: 'Outer steps of linear warm-up first: the factor is (s + 1)/warmupSteps at step s (0: none).',
};

const decaySchema = (shape: string): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  properties: {
    warmupSteps: warmupSchema,
    decaySteps: {
      type: ['integer', 'null'],
      minimum: 1,
      default: DECAY_DEFAULTS.decaySteps,
      description: `Outer steps of the ${shape} after the warm-up; null: to the end of the run (epochs × episodesPerEpoch × truncations per episode, less the warm-up; more epochs on --resume stretch what is left).`,
    },
    final: { type: 'number', minimum: 0, maximum: 1, default: DECAY_DEFAULTS.final, description: 'The factor at the end of the decay and after it.' },
  },
});

/**
 * Core's own contribution: the built-in estimators (engine/estimators) as components of kind "estimator" and the
 * built-in learning-rate schedules (engine/schedules.ts) as components of kind "schedule".
 */
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
    defineComponent<Record<string, never>>()({
      kind: 'schedule',
      type: 'constant',
      description: 'The outer learning rate as given, at every step (what an absent training.learningRateSchedule means).',
      schema: { type: 'object', additionalProperties: false, properties: {} },
      create: () => BUILTIN_SCHEDULES.constant(),
    }),
    defineComponent<DecayOptions>()({
      kind: 'schedule',
      type: 'cosine',
      description: 'Linear warm-up, then half a cosine from 1× down to final× the outer learning rate (optax warmup_cosine_decay_schedule).',
      schema: decaySchema('cosine decay'),
      create: (options) => BUILTIN_SCHEDULES.cosine(options),
    }),
    defineComponent<DecayOptions>()({
      kind: 'schedule',
      type: 'linear',
      description: 'Linear warm-up, then a straight line from 1× down to final× the outer learning rate.',
      schema: decaySchema('linear decay'),
      create: (options) => BUILTIN_SCHEDULES.linear(options),
    }),
    defineComponent<ExponentialOptions>()({
      kind: 'schedule',
      type: 'exponential',
      description: 'Linear warm-up, then rate^((s − warmupSteps)/every) times the outer learning rate (Keras ExponentialDecay).',
      schema: {
        type: 'object',
        additionalProperties: false,
        properties: {
          rate: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: EXPONENTIAL_DEFAULTS.rate, description: 'The factor per `every` outer steps.' },
          every: { type: 'integer', minimum: 1, default: EXPONENTIAL_DEFAULTS.every, description: 'Outer steps per factor of `rate`.' },
          staircase: { type: 'boolean', default: EXPONENTIAL_DEFAULTS.staircase, description: 'Apply whole powers only: the factor drops at multiples of `every`.' },
          warmupSteps: warmupSchema,
        },
      },
      create: (options) => BUILTIN_SCHEDULES.exponential(options),
    }),
    defineComponent<StepsOptions>()({
      kind: 'schedule',
      type: 'steps',
      description: 'Piecewise constant: the outer learning rate times rate^(boundaries passed), a step decay.',
      schema: {
        type: 'object',
        additionalProperties: false,
        properties: {
          boundaries: {
            type: 'array',
            items: { type: 'integer', minimum: 1 },
            default: STEPS_DEFAULTS.boundaries,
            description: 'Outer steps from which one more factor of `rate` applies (any order).',
          },
          rate: { type: 'number', exclusiveMinimum: 0, default: STEPS_DEFAULTS.rate, description: 'The factor at each boundary.' },
        },
      },
      create: (options) => BUILTIN_SCHEDULES.steps(options),
    }),
  ],
};
