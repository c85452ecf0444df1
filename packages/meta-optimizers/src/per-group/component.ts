import { BASELINE_GROUP_KIND, BaselineGroup, defineComponent, PARAMETER_GROUP_PATTERN, PER_GROUP_TYPE, PerGroupMetaOptimizer, type ComponentConfig, type JsonSchema, type MetaOptimizer } from '@l2l/core';

/** A group's component: a meta-optimizer, or with `kind: "optimizer"` a baseline that meta-training leaves as it is. */
export type PerGroupEntry = ComponentConfig & { kind?: 'meta-optimizer' | typeof BASELINE_GROUP_KIND };

export interface PerGroupOptions {
  groups: Record<string, PerGroupEntry>;
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
        properties: {
          type: { type: 'string' },
          options: { type: 'object' },
          kind: {
            enum: ['meta-optimizer', BASELINE_GROUP_KIND],
            description: 'Absent or "meta-optimizer": a learned optimizer, meta-trained. "optimizer": a baseline (sgd, nag, rmsprop, adam, …) with its options as given, which meta-training leaves as it is.',
          },
        },
      },
      description:
        'One meta-optimizer per parameter group, by the optimizee\'s group names (conv-net and stn: "conv" for the conv kernels, "fc" for the rest; a task without groups has one, "all"): {"conv": {"type": "lstm"}, "fc": {"type": "lstm"}}. The groups share no weights. Every group of the optimizee needs one. A group may get a baseline instead, as DeepMind\'s "simple-multi" does: {"fc": {"kind": "optimizer", "type": "adam", "options": {"learningRate": 0.003}}}; at least one group must be a meta-optimizer.',
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
  fusedKernel: "each group's own, where every learned group's meta-optimizer has one (a baseline group runs its tfjs update inside it)",
  description: 'One meta-optimizer per parameter group of the optimizee (conv / fc), sharing no weights (the paper\'s CIFAR-10 setup), or a baseline for a group (DeepMind\'s simple-multi)',
  schema: PER_GROUP_OPTIONS_SCHEMA,
  create: (options, ctx) => {
    if (!ctx.createNested) throw new Error('per-group: built outside a ComponentRegistry (CreateContext.createNested is missing)');
    const metas: Record<string, MetaOptimizer> = {};
    try {
      for (const [group, entry] of Object.entries(options.groups)) {
        const { kind, ...config } = entry;
        const at = `options.groups.${group}`;
        metas[group] = kind === BASELINE_GROUP_KIND ? new BaselineGroup(ctx.createNested('optimizer', config, at), config) : ctx.createNested('meta-optimizer', config, at);
      }
    } catch (e) {
      for (const m of Object.values(metas)) m.dispose();
      throw e;
    }
    return new PerGroupMetaOptimizer(metas);
  },
});
