import * as tf from '@tensorflow/tfjs-core';
import '../backend';
import type { JsonSchema } from '../schema/validate';
import type { ComponentDefinition, ComponentKind, CreateContext } from '../registry/component';
import { ComponentRegistry } from '../registry/registry';
import type { NamedTensors, TensorTree } from '../tensor-tree';
import { treeTensors } from '../tensor-tree';

/** Thrown by the `check*` functions: a component breaks its contract. */
export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}

/** What every check accepts. */
export interface CheckOptions {
  /** Component options; the schema's defaults fill in the rest. Use it to keep a check small and fast. */
  options?: Record<string, unknown>;
  /** Seed and base directory passed to the factory (default seed 0, base directory `process.cwd()`), and how it builds nested components (a registry's, for per-group). */
  ctx?: Partial<CreateContext>;
}

/** A labelled failure reporter: `fail('sample is not deterministic')` → `checkTaskFamily(optimizee "x"): ...`. */
export type Fail = (message: string) => never;

export function failer(label: string): Fail {
  return (message: string) => {
    throw new ContractError(`${label}: ${message}`);
  };
}

/** Runs `fn`; any error it throws becomes a contract failure that says what was being done. */
export function attempt<T>(fail: Fail, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ContractError) throw e;
    return fail(`${doing} threw: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** `attempt` for work that may be asynchronous: a rejection becomes a contract failure too. */
export async function attemptAsync<T>(fail: Fail, doing: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ContractError) throw e;
    return fail(`${doing} threw: ${(e as Error)?.message ?? String(e)}`);
  }
}

/**
 * Registers the definition alone in a fresh registry (the same rules as a real one: kind, kebab-case
 * type, description, closed and described schema) and resolves the check's options against its schema.
 */
export function prepare(
  checker: string,
  def: ComponentDefinition,
  kind: ComponentKind,
  opts: CheckOptions,
): { fail: Fail; registry: ComponentRegistry; options: Record<string, unknown>; ctx: CreateContext } {
  const fail = failer(`${checker}(${kind} "${def?.type}")`);
  if (!def || typeof def !== 'object') fail('expected a component definition ({ kind, type, description, schema, create })');
  if (def.kind !== kind) fail(`kind must be "${kind}", got ${JSON.stringify(def.kind)}`);
  if (typeof def.create !== 'function') fail('create must be a function');
  const registry = new ComponentRegistry();
  attempt(fail, 'registering the component', () => registry.add(def, checker));
  const options = attempt(fail, 'resolving options', () =>
    registry.resolveOptions(kind, { type: def.type, options: (opts.options ?? {}) as never }),
  );
  const ctx: CreateContext = { seed: opts.ctx?.seed ?? 0, baseDir: opts.ctx?.baseDir ?? process.cwd(), ...(opts.ctx?.createNested ? { createNested: opts.ctx.createNested } : {}) };
  return { fail, registry, options, ctx };
}

/** JSON with object keys sorted, so equal values give equal strings. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

/** Throws unless `value` is plain JSON (survives a stringify/parse round trip unchanged). */
export function checkPlainJson(fail: Fail, value: unknown, what: string): void {
  let copy: unknown;
  try {
    copy = JSON.parse(JSON.stringify(value));
  } catch (e) {
    fail(`${what} is not JSON-serialisable: ${(e as Error).message}`);
  }
  if (stableJson(copy) !== stableJson(value) || !deepEqual(copy, value)) {
    fail(`${what} is not plain JSON (a stringify/parse round trip changes it): ${show(value)}`);
  }
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) &&
    deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export function show(value: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    s = undefined;
  }
  s ??= String(value);
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}

/** A tensor's dtype, shape and values, read synchronously. */
export interface TensorSnapshot {
  dtype: string;
  shape: number[];
  values: number[];
}

export function snapshotTensor(t: tf.Tensor): TensorSnapshot {
  return { dtype: t.dtype, shape: [...t.shape], values: Array.from(t.dataSync() as ArrayLike<number>) };
}

export function snapshotNamed(named: Readonly<Record<string, tf.Tensor>>): Record<string, TensorSnapshot> {
  const out: Record<string, TensorSnapshot> = {};
  for (const [k, t] of Object.entries(named)) out[k] = snapshotTensor(t);
  return out;
}

/** Names, dtypes and shapes (not values) of two tensor maps must agree; `what` says which maps. */
export function checkSameStructure(fail: Fail, expected: Readonly<Record<string, tf.Tensor>>, actual: unknown, what: string): void {
  if (!actual || typeof actual !== 'object') fail(`${what}: expected named tensors, got ${show(actual)}`);
  const got = actual as Record<string, unknown>;
  const want = Object.keys(expected).sort();
  const have = Object.keys(got).sort();
  if (want.join(',') !== have.join(',')) fail(`${what}: names changed from [${want.join(', ')}] to [${have.join(', ')}]`);
  for (const k of want) {
    const t = got[k];
    if (!(t instanceof tf.Tensor)) fail(`${what}: "${k}" is not a tensor`);
    if (t.isDisposed) fail(`${what}: "${k}" is disposed`);
    const e = expected[k]!;
    if (t.shape.join(',') !== e.shape.join(',')) fail(`${what}: "${k}" has shape [${t.shape}], expected [${e.shape}]`);
    if (t.dtype !== e.dtype) fail(`${what}: "${k}" has dtype ${t.dtype}, expected ${e.dtype}`);
  }
}

/** The tensors must be alive and hold the snapshot's values (the callee neither disposed nor changed them). */
export function checkUnchanged(fail: Fail, named: Readonly<Record<string, tf.Tensor>>, before: Record<string, TensorSnapshot>, what: string): void {
  for (const [k, snap] of Object.entries(before)) {
    const t = named[k]!;
    if (t.isDisposed) fail(`${what}: "${k}" was disposed (inputs belong to the caller)`);
    if (!deepEqual(snapshotTensor(t), snap)) fail(`${what}: "${k}" was modified (inputs must not change)`);
  }
}

/** Every value finite; returns the largest magnitude. */
export function checkFinite(fail: Fail, t: tf.Tensor, what: string): number {
  const values = t.dataSync() as ArrayLike<number>;
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) fail(`${what} is not finite (${v} at index ${i})`);
    max = Math.max(max, Math.abs(v));
  }
  return max;
}

/** Runs `fn` in a tfjs scope that disposes every tensor it created, whatever `fn` returns (`tf.tidy` for non-tensor results). */
export function scoped<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

export function numTensors(): number {
  return tf.memory().numTensors;
}

/** The live tensors of a tree, as a set (for `disposeTree`-like bookkeeping). */
export function tensorSet(...trees: TensorTree[]): Set<tf.Tensor> {
  const s = new Set<tf.Tensor>();
  for (const tree of trees) for (const t of treeTensors(tree)) s.add(t);
  return s;
}

/** Disposes every tensor of `trees` that is not in `keep`. */
export function disposeExcept(keep: Set<tf.Tensor>, ...trees: TensorTree[]): void {
  for (const t of tensorSet(...trees)) if (!keep.has(t) && !t.isDisposed) t.dispose();
}

/** A deterministic, well-conditioned quadratic 0.5·Σ c⊙(p − t)² over named parameters, with its gradient. */
export interface TestQuadratic {
  /** Fresh initial parameters (the caller owns them). */
  init(): NamedTensors;
  loss(params: NamedTensors): tf.Scalar;
  /** Closed-form gradient c⊙(p − t): differentiable, so it can sit inside a meta-gradient. */
  grads(params: NamedTensors): NamedTensors;
  dispose(): void;
}

export function testQuadratic(shapes: Record<string, number[]>): TestQuadratic {
  // Fixed pseudo-random values (no Rng state shared with the component under test).
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296;
  };
  const fill = (shape: number[], f: () => number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, f);
  };
  const curv: NamedTensors = {};
  const target: NamedTensors = {};
  const start: Record<string, number[]> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    curv[name] = tf.keep(tf.tensor(fill(shape, () => 0.5 + next()), shape));
    target[name] = tf.keep(tf.tensor(fill(shape, () => 2 * next() - 1), shape));
    start[name] = fill(shape, () => 4 * next() - 2);
  }
  return {
    init: () => Object.fromEntries(Object.entries(shapes).map(([n, shape]) => [n, tf.tensor(start[n]!, shape)])),
    loss: (params) =>
      tf.tidy(() => {
        const terms = Object.keys(shapes).map((n) => tf.sum(tf.mul(curv[n]!, tf.square(tf.sub(params[n]!, target[n]!)))));
        return tf.mul(tf.addN(terms), 0.5) as tf.Scalar;
      }),
    grads: (params) =>
      tf.tidy(() => Object.fromEntries(Object.keys(shapes).map((n) => [n, tf.mul(curv[n]!, tf.sub(params[n]!, target[n]!))]))),
    dispose: () => {
      for (const t of [...Object.values(curv), ...Object.values(target)]) t.dispose();
    },
  };
}

export type { JsonSchema };
