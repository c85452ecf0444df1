import type { JsonSchema } from '@l2l/core';
import { validateWithSchema } from '@l2l/core';
import type { GradientPreprocessing } from '../common';

/** Options of the coordinatewise LSTM optimizer (Andrychowicz et al. 2016); see `LSTM_OPTIONS_SCHEMA`. */
export interface LstmOptions {
  layers: number;
  hidden: number;
  preprocessing: GradientPreprocessing;
  k: number;
  outputScale: number;
  initScale: number;
  forgetBias: number;
}

export const LSTM_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    layers: { type: 'integer', minimum: 1, default: 2, description: 'Number of stacked LSTM layers (2 in the paper).' },
    hidden: { type: 'integer', minimum: 1, default: 20, description: 'Hidden units in each LSTM layer (20 in the paper).' },
    preprocessing: {
      type: 'string',
      enum: ['none', 'logAndSign'],
      default: 'logAndSign',
      description:
        'Gradient input per coordinate: "logAndSign" gives (log|g|/k, sign g) for |g| ≥ e^-k and (-1, e^k·g) otherwise (paper, appendix A); "none" gives g itself.',
    },
    k: { type: 'number', exclusiveMinimum: 0, default: 10, description: 'The constant k of the logAndSign preprocessing (10 in the paper).' },
    outputScale: {
      type: 'number',
      default: 0.1,
      description: 'Each update is outputScale × (linear output of the top LSTM layer), as in DeepMind\'s implementation.',
    },
    initScale: {
      type: 'number',
      minimum: 0,
      default: 1,
      description: 'Initial weights are drawn from a normal truncated at 2 std with std initScale/sqrt(fan-in); biases start at 0.',
    },
    forgetBias: { type: 'number', default: 1, description: 'Initial bias of the LSTM forget gates (keeps the cell state at the start of training).' },
  },
};

/** Options with defaults applied; throws a `UserError` naming each bad field. */
export function resolveLstmOptions(options: Partial<LstmOptions> = {}): LstmOptions {
  return validateWithSchema<LstmOptions>(LSTM_OPTIONS_SCHEMA, options, 'meta-optimizer "lstm"');
}
