import type { EstimatorFactory } from '../contracts/estimator';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { Optimizer } from '../contracts/optimizer';
import type { LearningRateSchedule } from '../contracts/schedule';
import type { TaskFamily } from '../contracts/task';
import type { JsonSchema } from '../schema/validate';
import type { ComponentConfig } from '../contracts/json';

/** What each kind of component builds. Adding a kind means adding a line here. */
export interface ComponentKinds {
  optimizee: TaskFamily;
  'meta-optimizer': MetaOptimizer;
  optimizer: Optimizer;
  /** A meta-gradient estimator (training.estimator), waiting for the run's meta-optimizer and options. */
  estimator: EstimatorFactory;
  /** A learning-rate schedule of the outer loop (training.learningRateSchedule). */
  schedule: LearningRateSchedule;
}
export type ComponentKind = keyof ComponentKinds;
export const COMPONENT_KINDS: readonly ComponentKind[] = ['optimizee', 'meta-optimizer', 'optimizer', 'estimator', 'schedule'];

/** What a factory gets beside its options. */
export interface CreateContext {
  /** Seed for anything random the component draws at construction (initial weights, say). */
  readonly seed: number;
  /** Directory that relative paths in options are resolved from (the config file's directory). */
  readonly baseDir: string;
  /**
   * Builds a component given inside this one's options (`per-group`'s groups), through the same registry: its
   * options are validated and errors name it as `<this component's label>.<label>`; its seed is derived from this
   * one's and `label`. Set by `ComponentRegistry.create`.
   */
  readonly createNested?: <K extends ComponentKind>(kind: K, config: ComponentConfig, label: string) => ComponentKinds[K];
}

/**
 * A registered component: a `type` name, a one-line description, a JSON Schema for its options (closed,
 * every property described, defaults given there) and a factory that receives validated options with
 * defaults applied.
 */
export interface ComponentDefinition<K extends ComponentKind = ComponentKind, O = any> {
  readonly kind: K;
  readonly type: string;
  readonly description: string;
  readonly schema: JsonSchema;
  /**
   * Meta-optimizers only: the fused kernel its optimizers carry (contracts/fused.ts), in words, for `l2l list`;
   * absent when it has none and meta-gradients run on the tfjs tape.
   */
  readonly fusedKernel?: string;
  create(options: O, ctx: CreateContext): ComponentKinds[K];
  /**
   * Lower bounds of the memory the component needs, from its options alone: the pre-flight (`l2l validate`,
   * `train`, `eval`) refuses a run that could not fit before anything is built. Optional; without it the
   * component's size is not checked.
   */
  estimate?(options: O): ComponentEstimate;
}

/** What a component needs at least, in elements and bytes (see `ComponentDefinition.estimate`). */
export interface ComponentEstimate {
  /** optimizee: the parameters of one task (the coordinates an optimizer updates). */
  readonly coordinates?: number;
  /** Bytes held while it exists (data sets, task matrices, as tensors and the arrays they are drawn into). */
  readonly bytes?: number;
  /** optimizee: bytes one taped step adds (its activations); meta-optimizer: the same per coordinate. */
  readonly stepBytes?: number;
  /** meta-optimizer: bytes of state per coordinate (carried from step to step). */
  readonly stateBytes?: number;
  /** meta-optimizer: number of its weights. */
  readonly weights?: number;
  /**
   * meta-optimizer: bytes one step of an unroll adds per coordinate on its fused kernel (contracts/fused.ts),
   * which keeps no tape; absent when these options give no kernel.
   */
  readonly fusedStepBytes?: number;
}

/** Typed helper: `defineComponent<MyOptions>()({ kind: 'optimizee', ... })` checks the factory's options. */
export function defineComponent<O>() {
  return <K extends ComponentKind>(def: ComponentDefinition<K, O>): ComponentDefinition<K, O> => def;
}

/** A package's contribution to the registry; each package's container module binds one. */
export interface ComponentContribution {
  /** Package name, used in messages (`registered by both @l2l/optimizees and l2l-plugin-foo`). */
  readonly source: string;
  readonly components: readonly ComponentDefinition[];
}
export const ComponentContribution = Symbol.for('l2l.ComponentContribution');
