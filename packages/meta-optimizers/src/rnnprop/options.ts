import type { JsonSchema } from '@l2l/core';
import { validateWithSchema } from '@l2l/core';

/** Options of RNNprop (Lv, Jiang & Li 2017); see `RNNPROP_OPTIONS_SCHEMA`. */
export interface RnnpropOptions {
  inputUnits: number;
  layers: number;
  hidden: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  lr: number;
  initScale: number;
  forgetBias: number;
}

export const RNNPROP_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    inputUnits: {
      type: 'integer',
      minimum: 1,
      default: 20,
      description: 'Units of the fully connected ELU layer that maps the two Adam-normalised inputs to the LSTM (20 in the paper).',
    },
    layers: { type: 'integer', minimum: 1, default: 2, description: 'Number of stacked LSTM layers (2 in the paper).' },
    hidden: { type: 'integer', minimum: 1, default: 20, description: 'Hidden units in each LSTM layer (20 in the paper).' },
    beta1: {
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.95,
      description: 'Decay of the running mean m of the gradient, whose bias-corrected value m̂/√v̂ is an input (0.95 in the paper).',
    },
    beta2: {
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.95,
      description: 'Decay of the running mean v of the squared gradient; both inputs are divided by √v̂ (bias-corrected) + epsilon (0.95 in the paper).',
    },
    epsilon: { type: 'number', exclusiveMinimum: 0, default: 1e-8, description: 'Added to √v̂ before dividing (1e-8 in the authors\' code).' },
    lr: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 0.1,
      description: 'α of the paper: each coordinate moves by −α·tanh(a), a the network\'s linear output, so no step exceeds α (0.1 in the paper).',
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
export function resolveRnnpropOptions(options: Partial<RnnpropOptions> = {}): RnnpropOptions {
  return validateWithSchema<RnnpropOptions>(RNNPROP_OPTIONS_SCHEMA, options, 'meta-optimizer "rnnprop"');
}
