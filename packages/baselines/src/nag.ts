import { defineComponent, type Optimizer } from '@l2l/core';
import { elementwiseOptimizer, optimizerName, resolveOptions } from './common';
import { momentumRule, momentumSchema, type MomentumOptions } from './momentum';

export type NagOptions = MomentumOptions;

/** Nesterov momentum as `tf.train.momentum(lr, μ, true)`: a ← μ·a + g; θ ← θ − lr·(g + μ·a). */
export const nagComponent = defineComponent<NagOptions>()({
  kind: 'optimizer',
  type: 'nag',
  description: 'Nesterov accelerated gradient: a ← μ·a + g, θ ← θ − lr·(g + μ·a) (as tf.train.momentum with useNesterov)',
  schema: momentumSchema,
  create: (options) => nagOptimizer(options),
});

/** NAG as a functional optimizer; options are validated and defaulted (`learningRate` 0.01, `momentum` 0.9). */
export function nagOptimizer(options: Partial<NagOptions> = {}): Optimizer {
  const o = resolveOptions(nagComponent, options);
  return elementwiseOptimizer(optimizerName(nagComponent, o), momentumRule(o.learningRate, o.momentum, true));
}
