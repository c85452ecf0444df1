import * as fs from 'node:fs';
import * as path from 'node:path';
import { BACKEND_CHOICES, type BackendChoice } from '../backend';
import type { ComponentConfig, JsonObject } from '../contracts/json';
import { isUserError, UserError } from '../errors';
import { BASELINE_GROUP_KIND, PER_GROUP_TYPE } from '../engine/per-group';
import type { PluginEntry } from '../plugins';
import type { ComponentKind } from '../registry/component';
import { trainingProblems, type TrainingOptions } from '../engine/options';
import type { ComponentRegistry } from '../registry/registry';
import { ConfigError, errorProblems, validateWithSchema, type JsonSchema } from '../schema/validate';

// The engine's options (a plain type the engine owns); the schema below describes them in the experiment file.
export type { TrainingOptions } from '../engine/options';
export { trainingProblems } from '../engine/options';

const componentRef = (description: string): JsonSchema => ({
  type: 'object',
  description,
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { type: 'string', description: 'Registered component type (see `l2l list`).' },
    options: { type: 'object', description: 'Options of that component type.' },
  },
});

export const trainingSchema: JsonSchema = {
  type: 'object',
  description: 'Meta-training by truncated backpropagation through time.',
  additionalProperties: false,
  properties: {
    epochs: { type: 'integer', minimum: 1, default: 20, description: 'Number of epochs; each runs episodesPerEpoch episodes.' },
    episodesPerEpoch: { type: 'integer', minimum: 1, default: 10, description: 'Episodes per epoch; each episode samples a new training task and fresh parameters.' },
    steps: { type: 'integer', minimum: 1, default: 100, description: 'Optimizee steps per episode.' },
    unroll: { type: 'integer', minimum: 1, default: 20, description: 'Steps per truncated unroll; the meta-weights are updated after each unroll.' },
    lossWeights: {
      enum: ['uniform', 'last'],
      default: 'uniform',
      description:
        'Meta-loss of an unroll: the sum of the losses after every step (uniform) or the loss after its last step only (last: a training trick of Lv et al. 2017, RNNprop, for longer horizons).',
    },
    secondDerivatives: { type: 'boolean', default: false, description: 'Backpropagate through the optimizee gradient (second derivatives); the paper drops them.' },
    learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Adam learning rate for the meta-optimizer weights.' },
    gradClipNorm: { type: ['number', 'null'], exclusiveMinimum: 0, default: null, description: 'Clip the meta-gradient to this global norm (null: no clipping).' },
    validateEvery: { type: 'integer', minimum: 1, default: 5, description: 'Validate on validation-split tasks every this many epochs (and after the last); the checkpoint with the best validation loss is kept as best/.' },
    validationTasks: { type: 'integer', minimum: 1, default: 10, description: 'Number of validation-split tasks per validation (never test tasks: those are for evaluation only).' },
    nonFinite: { enum: ['skip', 'stop'], default: 'skip', description: 'When a loss or meta-gradient is NaN or infinite: skip the rest of that episode (counted and reported) or stop training with an error.' },
    randomScale: {
      type: 'number',
      minimum: 0,
      default: 0,
      description:
        'Training trick (Lv et al. 2017): each training episode minimises f(c ⊙ θ) from θ₀ / c, with c = exp(U(−r, r)) drawn per coordinate; this is r (0: off; the authors use 3). Validation and evaluation are unaffected.',
    },
    convexCombination: {
      type: 'boolean',
      default: false,
      description:
        'Training trick (Lv et al. 2017): each training episode minimises f(θ) + (1/20) Σ (xᵢ − λᵢ)² over θ and 20 extra coordinates x (from 0, λᵢ ~ U(−1, 1) per episode). Validation and evaluation are unaffected.',
    },
    checkpointEvery: {
      type: ['integer', 'null'],
      minimum: 0,
      default: null,
      description:
        'Gradient checkpointing: backpropagate each unroll in segments of this many steps, recomputing each segment, so the tape holds one segment instead of the whole unroll (same meta-gradient; every segment but the last runs forward twice, up to a third more time). For long unrolls that would not fit in memory (the wasm backend holds at most 4 GiB); null or 0: off. The tfjs path only: the fused kernel keeps no tape and ignores it.',
    },
    workers: {
      type: 'integer',
      minimum: 0,
      default: 0,
      description:
        "Worker threads for meta-training: the optimizee's coordinates are split into this many contiguous chunks, each updated and backpropagated by a thread of its own, and their meta-gradients are added up: the same meta-gradient, on several cores. With a fused kernel the kernel's threads share one memory (the main thread takes one chunk); on the tfjs path each worker has its own tfjs (and wasm heap, which then holds only its chunk's tape). Needs a coordinatewise meta-optimizer (lstm, rnnprop, normalized-history, multiscale-adam) and secondDerivatives false; at most the number of coordinates. 0: everything in the main thread.",
    },
    kernel: {
      enum: ['auto', 'tfjs', 'fused'],
      default: 'auto',
      description:
        "How tbptt's meta-gradients are computed. fused: the meta-optimizer's fused kernel (WebAssembly SIMD, or plain JavaScript for multiscale-adam's linear combiner; every built-in learned optimizer has one, see `l2l list`) runs the unroll and its first-order backward pass outside tfjs, with no tape: the same meta-gradient to float32 rounding, several times faster, in a fraction of the memory; needs secondDerivatives false. tfjs: the tfjs tape (the reference; the only path for second derivatives). auto: fused where the meta-optimizer has a kernel and secondDerivatives is false, else tfjs. The train output says which runs.",
    },
    estimator: componentRef(
      'The meta-gradient estimator (absent: tbptt). tbptt: truncated backpropagation through time (first- or second-order, checkpointing, workers, fused kernels). es: antithetic evolution strategies over truncations (options sigma, samples, metric; forward passes only, on the fused kernel and workers where there is one). pes: persistent ES, unbiased over the whole episode. Plugins add others (kind "estimator", see `l2l list`).',
    ),
    tasksPerStep: { type: 'integer', minimum: 1, description: 'Tasks per outer step (absent: 1): each episode runs this many training tasks side by side, each with its own truncation state, and every meta-gradient estimate is their average.' },
    learningRateSchedule: componentRef(
      "The outer learning rate's schedule: a registered schedule {type, options} (constant, cosine, linear, exponential, steps; see `l2l list`) whose factor multiplies training.learningRate (or training.outerOptimizer's learningRate) at each outer step, by the step's place in the run (epochs × episodesPerEpoch × truncations per episode), so that --resume continues it exactly; absent: constant. log.csv and the train output show the factor.",
    ),
    outerOptimizer: componentRef(
      'The optimizer of the meta-optimizer\'s weights: any registered optimizer {type, options} (sgd, momentum, nag, rmsprop, adam, adagrad), with its own options (learningRate included); absent: Adam with training.learningRate. training.gradClipNorm clips its input either way; its state is checkpointed, so --resume is exact.',
    ),
  },
};


/** Evaluation of the learned optimizer against tuned baselines on held-out (test-split) tasks. */
export interface EvaluationOptions {
  steps: number;
  tasks: number;
  baselines: ComponentConfig[];
  tuning: { learningRates: number[]; tasks: number; steps: number | null };
}

export const evaluationSchema: JsonSchema = {
  type: 'object',
  description: 'Evaluation on held-out test-split tasks, against baselines whose learning rates are tuned on training tasks; paired per task, with 95 % confidence intervals.',
  additionalProperties: false,
  properties: {
    steps: { type: 'integer', minimum: 1, default: 100, description: 'Optimizee steps per evaluation run.' },
    tasks: { type: 'integer', minimum: 1, default: 100, description: 'Number of held-out test-split tasks (each with its own seed) every optimizer runs on; paired comparisons need enough of them (≥ 50 for MNIST at ≤ 200 steps, ≥ 100 for quadratics).' },
    baselines: {
      type: 'array',
      description: 'Hand-designed optimizers to compare against, as {type, options}; their learningRate is tuned unless tuning.learningRates is empty.',
      items: componentRef('A baseline optimizer: {type, options}.'),
      default: [{ type: 'sgd' }, { type: 'nag' }, { type: 'rmsprop' }, { type: 'adam' }],
    },
    tuning: {
      type: 'object',
      description: 'Learning-rate grid search for the baselines: the best mean final loss over training tasks wins.',
      additionalProperties: false,
      default: {},
      properties: {
        learningRates: {
          type: 'array',
          items: { type: 'number', exclusiveMinimum: 0 },
          default: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1, 3, 10, 30, 100],
          description: 'Learning rates tried for each baseline (a log grid); empty keeps each baseline\'s own.',
        },
        tasks: { type: 'integer', minimum: 1, default: 10, description: 'Training tasks (seeds) each grid point runs on.' },
        steps: { type: ['integer', 'null'], minimum: 1, default: null, description: 'Steps per tuning run (null: the evaluation steps).' },
      },
    },
  },
};

export interface ExperimentConfig {
  name?: string;
  description?: string;
  plugins: PluginEntry[];
  backend: BackendChoice;
  seed: number;
  optimizee: ComponentConfig;
  metaOptimizer?: ComponentConfig;
  training: TrainingOptions;
  evaluation: EvaluationOptions;
}

/** The experiment file's shape, with component options left open (each is checked against its own schema). */
export const experimentSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['optimizee'],
  properties: {
    $schema: { type: 'string', description: 'Path or URL of this schema, for editors.' },
    name: { type: 'string', description: 'Short name of the experiment.' },
    description: { type: 'string', description: 'What the experiment is for.' },
    plugins: {
      type: 'array',
      default: [],
      description: 'Plugin packages to load, resolved from the config file\'s directory: "name" or ["name", {options}].',
      items: {
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'array', minItems: 2, maxItems: 2, items: [{ type: 'string', minLength: 1 }, { type: 'object' }] },
        ],
      },
    },
    backend: { enum: [...BACKEND_CHOICES], default: 'auto', description: 'tfjs backend: auto prefers tensorflow (tfjs-node), then wasm, then cpu.' },
    seed: { type: 'integer', minimum: 0, default: 0, description: 'Seed of every random choice in the run.' },
    optimizee: componentRef('The task family to meta-train and evaluate on.'),
    metaOptimizer: componentRef('The learned optimizer to meta-train.'),
    training: { ...trainingSchema, default: {} },
    evaluation: { ...evaluationSchema, default: {} },
  },
};

/** Where each component sits in an experiment and what kind it is. */
function componentSlots(config: ExperimentConfig): Array<{ label: string; kind: ComponentKind; config: ComponentConfig }> {
  const slots: Array<{ label: string; kind: ComponentKind; config: ComponentConfig }> = [
    { label: 'optimizee', kind: 'optimizee', config: config.optimizee },
  ];
  if (config.metaOptimizer) slots.push({ label: 'metaOptimizer', kind: 'meta-optimizer', config: config.metaOptimizer });
  if (config.training.estimator) slots.push({ label: 'training.estimator', kind: 'estimator', config: config.training.estimator });
  if (config.training.outerOptimizer) slots.push({ label: 'training.outerOptimizer', kind: 'optimizer', config: config.training.outerOptimizer });
  if (config.training.learningRateSchedule) slots.push({ label: 'training.learningRateSchedule', kind: 'schedule', config: config.training.learningRateSchedule });
  config.evaluation.baselines.forEach((b, i) => slots.push({ label: `evaluation.baselines[${i}]`, kind: 'optimizer', config: b }));
  return slots;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The component option problems of a config whose experiment shape is invalid, so that one run lists both: every
 * component that reads as `{type, options}` (a string type, options an object or absent) is checked against its
 * schema; what the shape check already reports (a component that is not an object, say) is left to it. Types the
 * registry lacks are reported as unknown unless `skipUnknownTypes` (their plugin could not be loaded).
 */
export function componentProblemsOf(raw: unknown, registry: ComponentRegistry, where: string, options: { skipUnknownTypes?: boolean } = {}): string[] {
  if (!isObject(raw)) return [];
  const slots: Array<{ label: string; kind: ComponentKind; config: unknown }> = [
    { label: 'optimizee', kind: 'optimizee', config: raw.optimizee },
    { label: 'metaOptimizer', kind: 'meta-optimizer', config: raw.metaOptimizer },
  ];
  if (isObject(raw.training) && raw.training.learningRateSchedule !== undefined) {
    slots.push({ label: 'training.learningRateSchedule', kind: 'schedule', config: raw.training.learningRateSchedule });
  }
  const evaluation = raw.evaluation;
  if (isObject(evaluation) && Array.isArray(evaluation.baselines)) {
    evaluation.baselines.forEach((b, i) => slots.push({ label: `evaluation.baselines[${i}]`, kind: 'optimizer', config: b }));
  }
  const problems: string[] = [];
  for (const s of slots) {
    const c = s.config;
    if (!isObject(c) || typeof c.type !== 'string' || (c.options !== undefined && !isObject(c.options))) continue;
    if (!registry.has(s.kind, c.type) && options.skipUnknownTypes) continue;
    try {
      registry.resolveOptions(s.kind, c as unknown as ComponentConfig, where, s.label);
    } catch (e) {
      if (!isUserError(e)) throw e;
      problems.push(...errorProblems(e));
    }
  }
  return problems;
}

/** How deep arrays and objects may nest in a config (schemas, copies and checks recurse through them). */
export const MAX_JSON_DEPTH = 100;

/** The deepest nesting of brackets in JSON text, strings skipped; counted before parsing, so nothing recurses. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) max = Math.max(max, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return max;
}

/** Reads a JSON file; errors name the file (and the line of a syntax error). */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why: Record<string, string> = { ENOENT: 'no such file', EISDIR: 'is a directory', EACCES: 'permission denied' };
    throw new UserError(`${file}: cannot read: ${(code && why[code]) ?? code ?? (e as Error).message}`);
  }
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new UserError(`${file}: nested ${depth} levels deep, more than the ${MAX_JSON_DEPTH} a config may use`);
  try {
    return JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    const line = pos ? text.slice(0, Number(pos[1])).split('\n').length : undefined;
    throw new UserError(`${file}${line ? `:${line}` : ''}: invalid JSON: ${msg}`);
  }
}

/** Checks the experiment's shape (not the components' options) and applies defaults, on a copy. */
export function parseExperiment(raw: unknown, where: string): ExperimentConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new UserError(`${where}: an experiment config must be a JSON object`);
  }
  const config = validateWithSchema<ExperimentConfig & { $schema?: string }>(experimentSchema, raw, where);
  delete config.$schema;
  return config;
}

const pluginsOnlySchema: JsonSchema = { type: 'object', properties: { plugins: (experimentSchema.properties as Record<string, JsonSchema>).plugins } };

/** A raw config's plugin entries when that field alone is valid (absent: none), else undefined. */
export function pluginEntriesOf(raw: unknown): PluginEntry[] | undefined {
  if (!isObject(raw)) return undefined;
  try {
    return validateWithSchema<{ plugins: PluginEntry[] }>(pluginsOnlySchema, { plugins: raw.plugins }, 'plugins').plugins;
  } catch (e) {
    if (isUserError(e)) return undefined;
    throw e;
  }
}

/**
 * Fully validates an experiment against the registry: its shape, then every component's options with
 * defaults applied. Returns the resolved config (what a checkpoint stores). With `skipUnknownTypes`, components
 * of types the registry lacks are left as written and named in `skipped`.
 */
export function resolveExperiment(
  config: ExperimentConfig,
  registry: ComponentRegistry,
  where: string,
  options: { skipUnknownTypes?: boolean; skipped?: string[] } = {},
): ExperimentConfig {
  const out: ExperimentConfig = structuredClone(config);
  // Every component is checked, so one run reports every problem (a ConfigError lists them).
  const problems: string[] = [];
  const errors: unknown[] = [];
  for (const s of componentSlots(out)) {
    // Plugins not loaded (`l2l validate --no-plugins`): their components cannot be checked, only listed.
    if (options.skipUnknownTypes && s.config && typeof s.config.type === 'string' && !registry.has(s.kind, s.config.type)) {
      options.skipped?.push(`${s.label} "${s.config.type}"`);
      continue;
    }
    try {
      s.config.options = registry.resolveOptions(s.kind, s.config, where, s.label) as JsonObject;
      resolveNested(s.config, registry, where, s.label);
    } catch (e) {
      if (!isUserError(e)) throw e;
      errors.push(e);
      problems.push(...errorProblems(e));
    }
  }
  for (const problem of trainingProblems(out.training)) {
    const message = `${where}: ${problem}`;
    errors.push(new UserError(message));
    problems.push(message);
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ConfigError(problems.join('; '), problems);
  return out;
}

/**
 * The options of components given inside a per-group meta-optimizer's options, checked and with defaults applied
 * in place (the registry builds them later; the checkpoint stores them resolved).
 */
function resolveNested(config: ComponentConfig, registry: ComponentRegistry, where: string, label: string): void {
  if (config.type !== PER_GROUP_TYPE) return;
  const groups = (config.options?.groups ?? {}) as unknown as Record<string, ComponentConfig & { kind?: string }>;
  const entries = Object.entries(groups);
  for (const [group, sub] of entries) {
    const at = `${label}.options.groups.${group}`;
    // A baseline group (kind "optimizer") is an optimizer component, with that kind's options.
    const kind = sub.kind === BASELINE_GROUP_KIND ? 'optimizer' : 'meta-optimizer';
    sub.options = registry.resolveOptions(kind, sub, where, at) as JsonObject;
    if (kind === 'meta-optimizer') resolveNested(sub, registry, where, at);
  }
  if (entries.length && entries.every(([, sub]) => sub.kind === BASELINE_GROUP_KIND)) {
    throw new UserError(`${where ? `${where}: ` : ''}${label}.options.groups: every group is a baseline (kind "optimizer"), so there is nothing to meta-train; give at least one a meta-optimizer`);
  }
}

/** Loads, parses and resolves an experiment file; relative paths in it resolve from its directory. */
export function experimentBaseDir(file: string): string {
  return path.dirname(path.resolve(file));
}

/**
 * The JSON Schema of an experiment with every registered component's options spelled out (if/then on
 * `type`), for `l2l schema` and editors.
 */
export function fullExperimentSchema(registry: ComponentRegistry): JsonSchema {
  const componentSchema = (kind: ComponentKind, description: string): JsonSchema => {
    const comps = registry.list(kind);
    // With no component of this kind registered, any type name is let through (an empty enum or allOf
    // would not be a valid schema).
    return {
      type: 'object',
      description,
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: comps.length
          ? { enum: comps.map((c) => c.type), description: 'Registered component type.' }
          : { type: 'string', description: `Registered component type (none of kind ${kind} is registered).` },
        options: { type: 'object', description: 'Options of that component type.' },
      },
      ...(comps.length && {
        allOf: comps.map((c) => ({
          if: { properties: { type: { const: c.type } } },
          then: { properties: { options: { ...c.schema, description: c.description } } },
        })),
      }),
    };
  };
  const props = experimentSchema.properties as Record<string, JsonSchema>;
  const evalProps = evaluationSchema.properties as Record<string, JsonSchema>;
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'l2l experiment',
    ...experimentSchema,
    properties: {
      ...props,
      optimizee: componentSchema('optimizee', 'The task family to meta-train and evaluate on.'),
      metaOptimizer: componentSchema('meta-optimizer', 'The learned optimizer to meta-train.'),
      training: {
        ...props.training,
        properties: {
          ...(trainingSchema.properties as Record<string, JsonSchema>),
          estimator: componentSchema('estimator', 'The meta-gradient estimator (absent: tbptt).'),
          outerOptimizer: componentSchema('optimizer', "The outer optimizer of the meta-optimizer's weights (absent: Adam with training.learningRate)."),
          learningRateSchedule: componentSchema('schedule', "The outer learning rate's schedule (absent: constant)."),
        },
      },
      evaluation: {
        ...props.evaluation,
        properties: { ...evalProps, baselines: { ...evalProps.baselines, items: componentSchema('optimizer', 'A baseline optimizer.') } },
      },
    },
  };
}

/** Training options with the schema's defaults for what is not given (for pipelines written in code). */
export function resolveTrainingOptions(partial: Partial<TrainingOptions> = {}): TrainingOptions {
  return validateWithSchema<TrainingOptions>(trainingSchema, partial, 'training options');
}

/** Evaluation options with the schema's defaults for what is not given. */
export function resolveEvaluationOptions(partial: Partial<EvaluationOptions> = {}): EvaluationOptions {
  return validateWithSchema<EvaluationOptions>(evaluationSchema, partial, 'evaluation options');
}
