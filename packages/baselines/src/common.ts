import * as tf from '@tensorflow/tfjs-core';
import { validateWithSchema, type ComponentDefinition, type JsonSchema, type NamedTensors, type Optimizer, type OptimizerState, type StepContext } from '@l2l/core';

/**
 * What tfjs uses when an optimizer's epsilon is left null: `ENGINE.backend.epsilon()`, which is 1e-7 on the
 * cpu, wasm and tensorflow backends (float32). Baselines use this fixed value on every backend, so results do
 * not depend on which backend runs them.
 */
export const TFJS_EPSILON = 1e-7;

/** The `learningRate` option every baseline has (the engine tunes it on a grid). */
export function learningRateSchema(defaultValue: number): JsonSchema {
  return {
    type: 'number',
    exclusiveMinimum: 0,
    default: defaultValue,
    description: 'Step size; the engine can tune it on a grid',
  };
}

/** The `epsilon` option of adaptive methods. */
export function epsilonSchema(description: string): JsonSchema {
  return { type: 'number', exclusiveMinimum: 0, default: TFJS_EPSILON, description };
}

/** A decay rate or momentum coefficient in [0, 1). */
export function rateSchema(defaultValue: number, description: string): JsonSchema {
  return { type: 'number', minimum: 0, exclusiveMaximum: 1, default: defaultValue, description };
}

/** Validates programmatic options (`adamOptimizer({beta1: 0.5})`) against the component's schema, with defaults. */
export function resolveOptions<O>(def: ComponentDefinition<'optimizer', O>, options: Partial<O>): O {
  return validateWithSchema<O>(def.schema, options, `optimizer "${def.type}"`);
}

/**
 * `adam(lr=0.001)`: the type and learning rate, then every other option that differs from its default
 * (`momentum(lr=0.01, momentum=0.5)`), so grid points and variants get distinct names.
 */
export function optimizerName<O extends { learningRate: number }>(def: ComponentDefinition<'optimizer', O>, options: O): string {
  const props = (def.schema.properties ?? {}) as Record<string, { default?: unknown }>;
  const parts = [`lr=${options.learningRate}`];
  for (const [key, value] of Object.entries(options as Record<string, unknown>)) {
    if (key === 'learningRate') continue;
    if (props[key] && 'default' in props[key]! && props[key]!.default === value) continue;
    parts.push(`${key}=${String(value)}`);
  }
  return `${def.type}(${parts.join(', ')})`;
}

/** One parameter's slots: named tensors of the parameter's shape (`{m, v}` for Adam). */
export type ParamSlots = Record<string, tf.Tensor>;

/** An optimizer that updates each parameter tensor independently of the others (all the baselines). */
export interface ElementwiseRule<S extends ParamSlots> {
  /** Initial slots for one parameter (called inside `tf.tidy`). */
  init(param: tf.Tensor): S;
  /**
   * The parameter and slots after one update, called inside `tf.tidy`. `t` is the 1-based index of this
   * update (Adam's bias correction); `lrScale` multiplies the learning rate (a schedule's factor,
   * `StepContext.learningRateScale`; 1 without one). Must not modify its inputs; may return a slot unchanged.
   */
  apply(param: tf.Tensor, grad: tf.Tensor, slots: S, t: number, lrScale: number): { param: tf.Tensor; slots: S };
}

/**
 * A functional optimizer from a per-parameter rule. The state's `slots` are keyed by parameter name, then
 * by slot name: `{ w: { m: Tensor, v: Tensor }, b: { m, v } }` (`{ w: {} }` for plain SGD).
 *
 * Ownership: `init` clones the parameters (the state never aliases the caller's tensors) and creates new
 * slots. `update` runs in `tf.tidy` and returns new params and slots; it never changes or disposes its
 * inputs. A rule may return a slot tensor unchanged, in which case the old and new states share it, so
 * release the old state with `disposeTree(old, next)`.
 */
export function elementwiseOptimizer<S extends ParamSlots>(name: string, rule: ElementwiseRule<S>): Optimizer {
  return {
    name,
    init(params: NamedTensors): OptimizerState {
      const { newParams, slots } = tf.tidy(() => {
        const newParams: NamedTensors = {};
        const slots: Record<string, ParamSlots> = {};
        for (const [key, p] of Object.entries(params)) {
          newParams[key] = tf.clone(p);
          slots[key] = rule.init(p);
        }
        return { newParams, slots };
      });
      return { params: newParams, slots, step: 0 };
    },
    update(state: OptimizerState, grads: NamedTensors, ctx?: StepContext): OptimizerState {
      const allSlots = state.slots as Readonly<Record<string, S>>;
      for (const [key, p] of Object.entries(state.params)) {
        const g = grads[key];
        if (g === undefined) {
          throw new Error(`${name}: no gradient for parameter "${key}" (have: ${Object.keys(grads).join(', ')})`);
        }
        if (!tf.util.arraysEqual(g.shape, p.shape)) {
          throw new Error(`${name}: gradient for "${key}" has shape [${g.shape}], parameter has [${p.shape}]`);
        }
        if (!allSlots || typeof allSlots !== 'object' || !allSlots[key]) {
          throw new Error(`${name}: state has no slots for parameter "${key}" (was it made by this optimizer's init?)`);
        }
      }
      const t = state.step + 1;
      const lrScale = ctx?.learningRateScale ?? 1;
      if (!(lrScale >= 0) || !Number.isFinite(lrScale)) throw new Error(`${name}: learningRateScale must be finite and ≥ 0, got ${lrScale}`);
      const { params, slots } = tf.tidy(() => {
        const params: NamedTensors = {};
        const slots: Record<string, ParamSlots> = {};
        for (const [key, p] of Object.entries(state.params)) {
          const next = rule.apply(p, grads[key]!, allSlots[key]!, t, lrScale);
          params[key] = next.param;
          slots[key] = next.slots;
        }
        return { params, slots };
      });
      return { params, slots, step: t };
    },
  };
}
