import { defineComponent, PARAMETER_GROUP_PATTERN, PER_GROUP_TYPE, PerGroupMetaOptimizer, type ComponentConfig, type JsonSchema, type MetaOptimizer } from '@l2l/core';

export interface PerGroupOptions {
  groups: Record<string, ComponentConfig>;
}

export const PER_GROUP_OPTIONS_SCHEMA: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['groups'],
  properties: {
    groups: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: PARAMETER_GROUP_PATTERN.source },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['type'],
        properties: { type: { type: 'string' }, options: { type: 'object' } },
      },
      description:
        'One meta-optimizer per parameter group, by the optimizee\'s group names (conv-net and stn: "conv" for the conv kernels, "fc" for the rest; a task without groups has one, "all"): {"conv": {"type": "lstm"}, "fc": {"type": "lstm"}}. The groups share no weights. Every group of the optimizee needs one.',
    },
  },
};

/**
 * `{ "type": "per-group" }`: a learned optimizer per parameter group (Andrychowicz et al. 2016 §3.3, two LSTMs
 * for CIFAR-10), each group's built through the registry (engine/per-group.ts does the routing).
 */
export const perGroupComponent = defineComponent<PerGroupOptions>()({
  kind: 'meta-optimizer',
  type: PER_GROUP_TYPE,
  fusedKernel: "each group's own, where every group's meta-optimizer has one",
  description: 'One meta-optimizer per parameter group of the optimizee (conv / fc), sharing no weights (the paper\'s CIFAR-10 setup)',
  schema: PER_GROUP_OPTIONS_SCHEMA,
  create: (options, ctx) => {
    if (!ctx.createNested) throw new Error('per-group: built outside a ComponentRegistry (CreateContext.createNested is missing)');
    const metas: Record<string, MetaOptimizer> = {};
    try {
      for (const [group, config] of Object.entries(options.groups)) metas[group] = ctx.createNested('meta-optimizer', config, `options.groups.${group}`);
    } catch (e) {
      for (const m of Object.values(metas)) m.dispose();
      throw e;
    }
    return new PerGroupMetaOptimizer(metas);
  },
});
