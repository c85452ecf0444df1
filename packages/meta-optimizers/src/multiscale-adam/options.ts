import type { JsonSchema } from '@l2l/core';
import { validateWithSchema } from '@l2l/core';

/** How the k candidate Adam updates are combined; see `MULTISCALE_ADAM_OPTIONS_SCHEMA`. */
export type MultiscaleCombiner = 'linear' | 'mlp' | 'rnn';
export const MULTISCALE_COMBINERS: readonly MultiscaleCombiner[] = ['linear', 'mlp', 'rnn'];

/** Options of multiscale Adam (thesis "Learning to Optimize Deep Neural Networks", ch. 4). */
export interface MultiscaleAdamOptions {
  betas: Array<[number, number]>;
  combiner: MultiscaleCombiner;
  hidden: number;
  learningRate: number;
  learnLearningRate: boolean;
  epsilon: number;
  initScale: number;
}

/** The six timescales of the thesis: (β1, β2) from slow (0.99, 0.9999) to fast (0.5, 0.555). */
export const DEFAULT_MULTISCALE_BETAS: Array<[number, number]> = [
  [0.99, 0.9999],
  [0.9, 0.999],
  [0.8, 0.888],
  [0.7, 0.777],
  [0.6, 0.666],
  [0.5, 0.555],
];

export const MULTISCALE_ADAM_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    betas: {
      type: 'array',
      minItems: 1,
      items: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'number', minimum: 0, exclusiveMaximum: 1 } },
      default: DEFAULT_MULTISCALE_BETAS,
      description: 'The (β1, β2) pair of each Adam run, one candidate update per pair (default: the six timescales of the thesis).',
    },
    combiner: {
      enum: [...MULTISCALE_COMBINERS],
      default: 'linear',
      description:
        'How the candidates are weighted: "linear", one learned softmax over the pairs shared by all coordinates; "mlp", per-coordinate softmax weights from an MLP (one ReLU layer) over the candidates; "rnn", per-coordinate softmax weights from an LSTM over the candidates.',
    },
    hidden: { type: 'integer', minimum: 1, default: 20, description: 'Hidden units of the "mlp" or "rnn" combiner (unused by "linear").' },
    learningRate: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 0.01,
      description: 'Learning rate that scales the combined Adam update; the initial value of the learned one when learnLearningRate is true.',
    },
    learnLearningRate: {
      type: 'boolean',
      default: true,
      description: 'Learn the learning rate (as a weight "lr/log", its logarithm) along with the combiner; false keeps learningRate fixed.',
    },
    epsilon: { type: 'number', exclusiveMinimum: 0, default: 1e-8, description: 'Adam\'s ε, added to √v̂ before dividing.' },
    initScale: {
      type: 'number',
      minimum: 0,
      default: 1,
      description:
        'Hidden-layer weights are drawn from a normal truncated at 2 std with std initScale/sqrt(fan-in); the layer producing the softmax logits uses a tenth of that, so training starts near the plain average of the candidates.',
    },
  },
};

/** Options with defaults applied; throws a `UserError` naming each bad field. */
export function resolveMultiscaleAdamOptions(options: Partial<MultiscaleAdamOptions> = {}): MultiscaleAdamOptions {
  return validateWithSchema<MultiscaleAdamOptions>(MULTISCALE_ADAM_OPTIONS_SCHEMA, options, 'meta-optimizer "multiscale-adam"');
}
