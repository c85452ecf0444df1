import * as tf from '@tensorflow/tfjs-core';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import type { OptimizerState } from '../contracts/optimizer';
import type { ComponentDefinition, CreateContext } from '../registry/component';
import type { ComponentRegistry } from '../registry/registry';
import type { NamedTensors } from '../tensor-tree';
import { checkOptimizerRun } from './optimizer';
import {
  attempt,
  checkFinite,
  checkPlainJson,
  checkSameStructure,
  deepEqual,
  numTensors,
  prepare,
  scoped,
  show,
  snapshotNamed,
  testQuadratic,
  type CheckOptions,
  type Fail,
} from './util';

export interface MetaOptimizerCheckOptions extends CheckOptions {
  /** Optimizee steps of the unroll the meta-gradient goes through (default 2). */
  unroll?: number;
}

/**
 * Smoke-tests a learned optimizer (kind `meta-optimizer`) against the `MetaOptimizer` contract; throws a
 * `ContractError` naming it and the broken rule. Checks: the options schema follows the registry's rules;
 * `variables` are named trainable variables; `getWeights` returns copies and `setWeights` round-trips (and
 * rejects wrong names or shapes); `config()` is plain JSON that the schema accepts unchanged and that, with
 * the weights, rebuilds the same meta-optimizer; its `optimizer()` honours the functional optimizer contract;
 * the update is differentiable in the weights (`tf.variableGrads` over a short unroll on a tiny quadratic
 * gives finite gradients for every variable, not all zero); one that claims `coordinatewise` gives the same
 * updates on parts of the coordinates (laid out as other named tensors) as on all of them; `optimizer(weights)`
 * reads the given weights (its updates equal those after `setWeights(weights)`) and leaves the variables as they
 * are (what ES and PES rely on); nothing leaks, and `dispose` frees the variables.
 */
export async function checkMetaOptimizer(definition: ComponentDefinition, opts: MetaOptimizerCheckOptions = {}): Promise<void> {
  await tf.ready();
  const { fail, registry, options, ctx } = prepare('checkMetaOptimizer', definition, 'meta-optimizer', opts);
  const before = numTensors();
  const mo = attempt(fail, 'create', () => definition.create(options, ctx)) as MetaOptimizer;
  if (!mo || typeof mo.optimizer !== 'function' || typeof mo.getWeights !== 'function') fail('create must return a MetaOptimizer');
  if (mo.type !== definition.type) fail(`type is ${show(mo.type)}, expected "${definition.type}"`);

  const variables = checkVariables(fail, mo);
  checkWeights(fail, mo, variables);
  checkConfig(fail, mo, definition, registry, ctx);

  const optimizer = attempt(fail, 'optimizer()', () => mo.optimizer());
  checkOptimizerRun(fail, optimizer, { steps: 3, training: true });
  if (mo.coordinatewise !== undefined && typeof mo.coordinatewise !== 'boolean') fail(`coordinatewise must be a boolean when present, got ${show(mo.coordinatewise)}`);
  if (mo.coordinatewise) checkCoordinatewise(fail, mo);
  checkDifferentiable(fail, mo, opts.unroll ?? 2);
  checkExplicitWeights(fail, mo);

  attempt(fail, 'dispose()', () => mo.dispose());
  for (const [name, v] of Object.entries(variables)) if (!v.isDisposed) fail(`dispose() left variable "${name}" allocated`);
  const left = numTensors() - before;
  if (left !== 0) fail(`${left} tensor(s) are still allocated after dispose()`);
}

function checkVariables(fail: Fail, mo: MetaOptimizer): Record<string, tf.Variable> {
  const variables = mo.variables;
  if (!variables || typeof variables !== 'object') fail('variables must be an object of named tf.Variables');
  const entries = Object.entries(variables);
  if (entries.length === 0) fail('variables is empty: a learned optimizer needs trainable weights');
  const seen = new Set<tf.Variable>();
  for (const [name, v] of entries) {
    if (!name) fail('a variable has an empty name');
    if (!(v instanceof tf.Variable)) fail(`variables["${name}"] is not a tf.Variable`);
    if (!v.trainable) fail(`variable "${name}" is not trainable`);
    if (v.isDisposed) fail(`variable "${name}" is disposed`);
    if (v.dtype !== 'float32') fail(`variable "${name}" has dtype ${v.dtype}, expected float32`);
    if (seen.has(v)) fail(`variable "${name}" appears twice under different names`);
    seen.add(v);
    checkFinite(fail, v, `initial value of variable "${name}"`);
  }
  return { ...variables };
}

function checkWeights(fail: Fail, mo: MetaOptimizer, variables: Record<string, tf.Variable>): void {
  const original = snapshotNamed(variables);
  const weights = attempt(fail, 'getWeights()', () => mo.getWeights());
  checkSameStructure(fail, variables, weights, 'getWeights()');
  if (!deepEqual(snapshotNamed(weights), original)) fail('getWeights() values differ from the variables');
  for (const [n, w] of Object.entries(weights)) {
    if (w === (variables[n] as tf.Tensor) || w instanceof tf.Variable) fail(`getWeights()["${n}"] is a variable, not a copy (the caller owns and disposes it)`);
    w.dispose();
  }
  for (const [n, v] of Object.entries(variables)) if (v.isDisposed) fail(`disposing getWeights()'s result disposed variable "${n}" (it must return copies)`);

  // setWeights(perturbed) → getWeights() gives the perturbed values; then restore.
  const perturbed = tf.tidy(() => Object.fromEntries(Object.entries(variables).map(([n, v], i) => [n, tf.add(v, 0.125 * (i + 1))])));
  attempt(fail, 'setWeights(weights)', () => mo.setWeights(perturbed));
  const back = mo.getWeights();
  const ok = deepEqual(snapshotNamed(back), snapshotNamed(perturbed)) && deepEqual(snapshotNamed(variables), snapshotNamed(perturbed));
  for (const t of [...Object.values(back)]) t.dispose();
  if (!ok) fail('setWeights(w) then getWeights() does not give w back (setWeights must assign every variable)');
  for (const [n, t] of Object.entries(perturbed)) if (t.isDisposed) fail(`setWeights disposed its input "${n}" (inputs belong to the caller)`);

  // Names and shapes must match exactly.
  const names = Object.keys(variables);
  const first = names[0]!;
  const cases: Array<[string, NamedTensors]> = [
    [`without "${first}"`, Object.fromEntries(Object.entries(perturbed).filter(([n]) => n !== first))],
    ['with an extra name', { ...perturbed, 'no-such-weight': perturbed[first]! }],
  ];
  const wrongShape = tf.zeros([...variables[first]!.shape, 2]);
  cases.push([`with "${first}" of shape [${wrongShape.shape}]`, { ...perturbed, [first]: wrongShape }]);
  for (const [what, w] of cases) {
    let threw = false;
    try {
      mo.setWeights(w);
    } catch {
      threw = true;
    }
    if (!threw) fail(`setWeights accepted weights ${what}: names and shapes must match exactly`);
  }
  wrongShape.dispose();
  for (const t of Object.values(perturbed)) t.dispose();
  const restore = tf.tidy(() => Object.fromEntries(Object.entries(original).map(([n, s]) => [n, tf.tensor(s.values, s.shape, 'float32')])));
  mo.setWeights(restore);
  for (const t of Object.values(restore)) t.dispose();
}

function checkConfig(
  fail: Fail,
  mo: MetaOptimizer,
  definition: ComponentDefinition,
  registry: ComponentRegistry,
  ctx: CreateContext,
): void {
  const config = attempt(fail, 'config()', () => mo.config());
  checkPlainJson(fail, config, 'config()');
  if (config?.type !== definition.type) fail(`config().type is ${show(config?.type)}, expected "${definition.type}"`);
  const resolved = attempt(fail, 'validating config() against the schema', () =>
    registry.resolveOptions('meta-optimizer', config),
  );
  if (!deepEqual(resolved, config.options ?? {})) {
    fail(`config().options must have every default applied: the schema turns ${show(config.options)} into ${show(resolved)}`);
  }
  // Rebuild from the config (another seed) and the weights: same config, same weights.
  const twin = attempt(fail, 'create(config().options)', () => definition.create(resolved, { ...ctx, seed: ctx.seed + 1 })) as MetaOptimizer;
  try {
    const weights = mo.getWeights();
    attempt(fail, 'setWeights on a meta-optimizer rebuilt from config()', () => twin.setWeights(weights));
    const w2 = twin.getWeights();
    const equal = deepEqual(snapshotNamed(w2), snapshotNamed(weights));
    for (const t of [...Object.values(weights), ...Object.values(w2)]) t.dispose();
    if (!equal) fail('a meta-optimizer rebuilt from config() does not take the weights back');
    if (!deepEqual(twin.config(), config)) fail(`a meta-optimizer rebuilt from config() has another config: ${show(twin.config())} vs ${show(config)}`);
  } finally {
    twin.dispose();
  }
}

/**
 * A coordinatewise optimizer's claim: two updates of the 10 coordinates of {w: [3, 2], b: [4]} at once, and of two
 * parts of them on their own, laid out differently ({a: [4]} and {b1: [2], b2: [2, 2]}) and fed the same entries
 * of the whole run's gradients and the same step contexts, give the same parameters.
 */
function checkCoordinatewise(fail: Fail, mo: MetaOptimizer): void {
  const steps = 2;
  const q = testQuadratic({ w: [3, 2], b: [4] });
  const flat = (named: NamedTensors): number[] => [...named.w!.dataSync(), ...named.b!.dataSync()];
  const parts: Array<{ at: number; shapes: Record<string, number[]> }> = [
    { at: 0, shapes: { a: [4] } },
    { at: 4, shapes: { b1: [2], b2: [2, 2] } },
  ];
  const describe = (shapes: Record<string, number[]>) => `{${Object.entries(shapes).map(([n, sh]) => `${n}: [${sh.join(', ')}]`).join(', ')}}`;
  try {
    scoped(() => {
      const optimizer = mo.optimizer();
      const start = q.init();
      const x0 = flat(start);
      let state = attempt(fail, 'init (coordinatewise check)', () => optimizer.init(start));
      const grads: number[][] = [];
      const losses: number[] = [];
      const whole: number[][] = [];
      for (let k = 0; k < steps; k++) {
        const g = q.grads(state.params);
        const loss = q.loss(state.params);
        grads.push(flat(g));
        losses.push(loss.dataSync()[0]!);
        state = attempt(fail, 'update (coordinatewise check)', () => optimizer.update(state, g, { step: k, loss, training: true }));
        whole.push(flat(state.params));
      }
      for (const part of parts) {
        // The part's coordinates, cut from a flat vector into its own named tensors.
        const named = (values: number[]): NamedTensors => {
          const out: NamedTensors = {};
          let at = part.at;
          for (const [n, shape] of Object.entries(part.shapes)) {
            const size = shape.reduce((a, b) => a * b, 1);
            out[n] = tf.tensor(values.slice(at, at + size), shape);
            at += size;
          }
          return out;
        };
        const size = Object.values(part.shapes).reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
        let own = attempt(fail, 'init on a part of the coordinates', () => optimizer.init(named(x0)));
        for (let k = 0; k < steps; k++) {
          const ctx = { step: k, loss: tf.scalar(losses[k]!), training: true };
          own = attempt(fail, 'update on a part of the coordinates', () => optimizer.update(own, named(grads[k]!), ctx));
          const got = Object.keys(part.shapes).flatMap((n) => [...(own.params[n]?.dataSync() ?? [])]);
          for (let j = 0; j < size; j++) {
            const want = whole[k]![part.at + j]!;
            if (!(Math.abs(got[j]! - want) <= 1e-5 * Math.max(1, Math.abs(want)))) {
              fail(
                `claims coordinatewise, but coordinates ${part.at}..${part.at + size - 1} of {w: [3, 2], b: [4]} updated on their own as ${describe(part.shapes)} ` +
                  `differ from the update of all 10: after step ${k + 1}, coordinate ${part.at + j} is ${got[j]} on its own and ${want} with the others ` +
                  '(an update that normalises, sums or takes a maximum across coordinates is not coordinatewise)',
              );
            }
          }
        }
      }
    });
  } finally {
    q.dispose();
  }
}

function checkDifferentiable(fail: Fail, mo: MetaOptimizer, unroll: number): void {
  const varList = Object.values(mo.variables);
  const nameOf = new Map(Object.entries(mo.variables).map(([n, v]) => [v.name, n]));
  const q = testQuadratic({ a: [2, 2], b: [3] });
  const params = q.init();
  const optimizer = mo.optimizer();
  const noGradient = (names: string[]) =>
    `variable(s) ${names.map((n) => `"${n}"`).join(', ')} get no gradient through a ${unroll}-step unroll: ` +
    'optimizer() must use the variables themselves (not copies or dataSync values) in its updates';
  const metaLoss = (): tf.Scalar => {
    let state: OptimizerState = optimizer.init(params);
    let total = tf.scalar(0);
    for (let k = 0; k < unroll; k++) {
      const loss = q.loss(state.params);
      state = optimizer.update(state, q.grads(state.params), { step: k, loss, training: true });
      total = tf.add(total, q.loss(state.params));
    }
    return total;
  };
  const measure = () => {
    const { value, grads } = attempt(fail, `tf.variableGrads over a ${unroll}-step unroll`, () => {
      try {
        return tf.variableGrads(metaLoss, varList);
      } catch (e) {
        if (/Cannot find a connection between any variable/.test((e as Error).message)) {
          fail(`${noGradient(Object.keys(mo.variables))}`);
        }
        throw e;
      }
    });
    const v = value.dataSync()[0]!;
    return { result: { value: v, grads }, dispose: () => [value, ...Object.values(grads)].forEach((t) => t?.dispose()) };
  };
  const first = measure();
  try {
    if (!Number.isFinite(first.result.value)) fail(`the meta-loss of a ${unroll}-step unroll is not finite (${first.result.value})`);
    const missing = Object.keys(mo.variables).filter((n) => !first.result.grads[mo.variables[n]!.name]);
    if (missing.length) {
      fail(noGradient(missing));
    }
    let largest = 0;
    for (const [vname, g] of Object.entries(first.result.grads)) {
      largest = Math.max(largest, checkFinite(fail, g as tf.Tensor, `the meta-gradient of variable "${nameOf.get(vname) ?? vname}"`));
    }
    if (largest === 0) fail(`every meta-gradient is zero over a ${unroll}-step unroll: the update does not depend on the weights`);
  } finally {
    first.dispose();
  }
  // A second meta-gradient must allocate nothing that outlives it.
  const start = numTensors();
  measure().dispose();
  const grown = numTensors() - start;
  for (const t of Object.values(params)) t.dispose();
  q.dispose();
  if (grown !== 0) fail(`a meta-gradient over a ${unroll}-step unroll leaked ${grown} tensor(s)`);
}

/**
 * φ explicit: two updates of `optimizer(w)` with w = φ + δ equal those of `optimizer()` after `setWeights(w)`,
 * differ from those at φ, and leave the variables untouched; weights of the wrong names or shapes are refused.
 */
function checkExplicitWeights(fail: Fail, mo: MetaOptimizer): void {
  const q = testQuadratic({ w: [3, 2], b: [4] });
  const original = snapshotNamed(mo.variables);
  const run = (make: () => ReturnType<MetaOptimizer['optimizer']>, what: string): number[] =>
    scoped(() => {
      const optimizer = attempt(fail, what, make);
      let state = attempt(fail, `init of ${what}`, () => optimizer.init(q.init()));
      for (let k = 0; k < 2; k++) {
        const loss = q.loss(state.params);
        state = attempt(fail, `update of ${what}`, () => optimizer.update(state, q.grads(state.params), { step: k, loss, training: true }));
      }
      return [...state.params.w!.dataSync(), ...state.params.b!.dataSync()];
    });
  // A shift of φ proportional to its size (and 0.05 where a weight is 0), so saturating units still move.
  const shifted = tf.tidy(() => Object.fromEntries(Object.entries(mo.variables).map(([n, v]) => [n, tf.add(tf.mul(v, 1.1), 0.05)])));
  try {
    const atPhi = run(() => mo.optimizer(), 'optimizer()');
    const given = run(() => mo.optimizer(shifted), 'optimizer(weights)');
    if (!deepEqual(snapshotNamed(mo.variables), original)) fail('optimizer(weights) changed the variables: perturbed copies must never touch the live weights');
    if (deepEqual(given, atPhi)) fail('optimizer(weights) gives the updates of the variables, not of the weights given: it must read φ from its argument');
    mo.setWeights(shifted);
    const afterSet = run(() => mo.optimizer(), 'optimizer() after setWeights');
    const worst = Math.max(...given.map((g, i) => Math.abs(g - afterSet[i]!) / Math.max(1, Math.abs(afterSet[i]!))));
    if (!(worst <= 1e-5)) fail(`optimizer(weights) and optimizer() after setWeights(weights) update differently (relative difference ${worst})`);
    const first = Object.keys(mo.variables)[0]!;
    const wrong = tf.zeros([...mo.variables[first]!.shape, 2]);
    let threw = false;
    try {
      mo.optimizer({ ...shifted, [first]: wrong });
    } catch {
      threw = true;
    }
    wrong.dispose();
    if (!threw) fail(`optimizer(weights) accepted "${first}" of shape [${[...mo.variables[first]!.shape, 2].join(', ')}]: names and shapes must match the variables`);
  } finally {
    const restore = tf.tidy(() => Object.fromEntries(Object.entries(original).map(([n, s]) => [n, tf.tensor(s.values, s.shape, 'float32')])));
    mo.setWeights(restore);
    tf.dispose([...Object.values(restore), ...Object.values(shifted)]);
    q.dispose();
  }
}
