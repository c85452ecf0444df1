import { BUILTIN_ESTIMATORS } from '../engine/estimators';
import type { ComponentContribution, ComponentDefinition } from '../registry/component';

/** The built-in estimators (engine/estimators) as registry components of kind "estimator"; core's own contribution. */
export const coreComponents: ComponentContribution = {
  source: '@l2l/core',
  components: BUILTIN_ESTIMATORS.map(
    (b): ComponentDefinition<'estimator'> => ({
      kind: 'estimator',
      type: b.type,
      description: b.description,
      schema: b.schema,
      create: (options: Record<string, unknown>) => b.factory(options),
    }),
  ),
};
