import type { JsonSchema } from '@l2l/core';
import { validateWithSchema } from '@l2l/core';

/** How the parameter history is normalised for the network's input; see `NORMALIZED_HISTORY_OPTIONS_SCHEMA`. */
export type ParamHistoryInput = 'range' | 'infNorm';

/** Options of the normalised-history optimizer (thesis "Learning to Optimize Deep Neural Networks", ch. 3). */
export interface NormalizedHistoryOptions {
  historySize: number;
  hidden: number;
  magnitudes: number[];
  minStep: number;
  paramInput: ParamHistoryInput;
  initScale: number;
}

/** The default magnitude grid: log-spaced from 1e-3 to 1, plus 2 (steps past the window's edge). */
export const DEFAULT_MAGNITUDES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 2];

export const NORMALIZED_HISTORY_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    historySize: {
      type: 'integer',
      minimum: 5,
      maximum: 100,
      default: 10,
      description: 'k: how many recent parameter values and gradients each coordinate keeps (the thesis tries 5 to 100).',
    },
    hidden: { type: 'integer', minimum: 1, default: 50, description: 'ReLU units of the per-coordinate MLP\'s hidden layer (50 in the thesis).' },
    magnitudes: {
      type: 'array',
      minItems: 1,
      items: { type: 'number', minimum: 0 },
      default: DEFAULT_MAGNITUDES,
      description:
        'The grid the step magnitude is a softmax expectation over, in units of (history range + minStep). Default log-spaced from 0.001 to 1, plus 2 so that a step can leave the window and widen it (the thesis code: 10 values evenly spaced in [0, 1]).',
    },
    minStep: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 1e-4,
      description:
        'Added to the range of the parameter history to give the step unit, so that a coordinate can move while its history is flat (at the start: then the range is 0). 1e-4 in the thesis code.',
    },
    paramInput: {
      enum: ['range', 'infNorm'],
      default: 'range',
      description:
        'How the parameter history enters the network: "range", each value relative to the window\'s midpoint in units of half the step unit, (θⱼ − mid)/((range + minStep)/2), the units the output uses; "infNorm", each value divided by the window\'s largest |θ| (the thesis code).',
    },
    initScale: {
      type: 'number',
      minimum: 0,
      default: 1,
      description: 'Initial weights are drawn from a normal truncated at 2 std with std initScale/sqrt(fan-in); biases start at 0.',
    },
  },
};

/** Options with defaults applied; throws a `UserError` naming each bad field. */
export function resolveNormalizedHistoryOptions(options: Partial<NormalizedHistoryOptions> = {}): NormalizedHistoryOptions {
  return validateWithSchema<NormalizedHistoryOptions>(NORMALIZED_HISTORY_OPTIONS_SCHEMA, options, 'meta-optimizer "normalized-history"');
}
