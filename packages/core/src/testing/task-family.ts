import * as tf from '@tensorflow/tfjs-core';
import { parameterGroupsOf, SPLITS, type Batch, type Split, type Task, type TaskConfig, type TaskFamily } from '../contracts/task';
import type { ComponentDefinition } from '../registry/component';
import type { NamedTensors } from '../tensor-tree';
import {
  attempt,
  checkFinite,
  checkPlainJson,
  checkSameStructure,
  checkUnchanged,
  deepEqual,
  numTensors,
  prepare,
  scoped,
  show,
  snapshotNamed,
  stableJson,
  type CheckOptions,
  type Fail,
} from './util';

export interface TaskFamilyCheckOptions extends CheckOptions {
  /** Seeds sampled per split when looking for tasks of two splits that coincide (default 20). */
  samples?: number;
  /** Seeds of the tasks that are built and run, of the splits train, validation, test in turn (default [0, 1, 2]). */
  seeds?: number[];
  /** Repeated loss/gradient calls in the leak check (default 3). */
  repeats?: number;
}

/**
 * Smoke-tests a task family (kind `optimizee`) against the `TaskFamily`/`Task` contracts; throws a
 * `ContractError` naming the family and the broken rule. Checks: the options schema follows the registry's
 * rules; `sample` is deterministic, plain JSON, names its family and split; train, validation and test
 * tasks never coincide; `build` → `initParams`/`batch`/`loss` are deterministic; the loss is a finite scalar and every
 * parameter gets a finite gradient; repeated loss and gradient calls (inside `tf.tidy`, as the engine makes
 * them) leak no tensor; `dispose` frees the task's tensors (and the family's, if it has `dispose`).
 *
 * ```ts
 * it('honours the task contracts', async () => { await checkTaskFamily(myFamily, { options: { dims: 3 } }); });
 * ```
 */
export async function checkTaskFamily(definition: ComponentDefinition, opts: TaskFamilyCheckOptions = {}): Promise<void> {
  await tf.ready();
  const { fail, options, ctx } = prepare('checkTaskFamily', definition, 'optimizee', opts);
  const samples = opts.samples ?? 20;
  const seeds = opts.seeds ?? [0, 1, 2];
  const repeats = opts.repeats ?? 3;

  const before = numTensors();
  const family = attempt(fail, 'create', () => definition.create(options, ctx)) as TaskFamily;
  if (!family || typeof family.sample !== 'function' || typeof family.build !== 'function') {
    fail('create must return a TaskFamily (with sample and build)');
  }
  if (family.type !== definition.type) fail(`family.type is ${show(family.type)}, expected "${definition.type}"`);

  // sample: deterministic, plain JSON, labelled.
  const sampled: Record<Split, TaskConfig[]> = { train: [], validation: [], test: [] };
  for (let seed = 0; seed < samples; seed++) {
    for (const split of SPLITS) {
      const config = attempt(fail, `sample(${seed}, "${split}")`, () => family.sample(seed, split));
      checkPlainJson(fail, config, `sample(${seed}, "${split}")`);
      if (config.family !== definition.type) fail(`sample(${seed}, "${split}").family is ${show(config.family)}, expected "${definition.type}"`);
      if (config.split !== split) fail(`sample(${seed}, "${split}").split is ${show(config.split)}, expected "${split}"`);
      if (typeof config.seed !== 'number' || !Number.isFinite(config.seed)) fail(`sample(${seed}, "${split}").seed must be a number, got ${show(config.seed)}`);
      const again = family.sample(seed, split);
      if (!deepEqual(config, again)) {
        fail(`sample(${seed}, "${split}") is not deterministic: ${show(config)} then ${show(again)} (draw from Rng.from(seed, split), not Math.random)`);
      }
      sampled[split].push(config);
    }
  }
  checkSplitsDisjoint(fail, family, sampled);

  // build → initParams / batch / loss / gradients, deterministic and leak-free, for a task of every split.
  let afterFirst: number | undefined;
  let firstGroups: { at: string; groups: string } | undefined;
  for (const [i, seed] of seeds.entries()) {
    const config = family.sample(seed, SPLITS[i % SPLITS.length]!);
    const groups = stableJson(runTask(fail, family, config, seed, repeats));
    // One assignment for the whole family: an experiment assigns optimizers to groups once, for every task.
    if (firstGroups && groups !== firstGroups.groups) {
      fail(`parameter groups differ between tasks: ${firstGroups.groups} for ${firstGroups.at}, ${groups} for ${show(config)}; every task of a family must report the same groups`);
    }
    firstGroups ??= { at: show(config), groups };
    const count = numTensors();
    // The first build may load data the family shares between tasks; later ones must leave nothing behind.
    if (afterFirst === undefined) afterFirst = count;
    else if (count !== afterFirst) {
      fail(`building, running and disposing a task left ${count - afterFirst} more tensor(s) behind than the first time: dispose() must free every tensor the task holds`);
    }
  }
  if (typeof family.dispose === 'function') {
    attempt(fail, 'family.dispose()', () => family.dispose!());
    const left = numTensors() - before;
    if (left !== 0) fail(`after the family's dispose(), ${left} tensor(s) it created are still allocated`);
  } else {
    const left = numTensors() - before;
    if (left !== 0) fail(`the family holds ${left} tensor(s) after its tasks were disposed, and has no dispose() to free them`);
  }
}

/** Configs of two different splits must never describe the same task. */
function checkSplitsDisjoint(fail: Fail, family: TaskFamily, sampled: Record<Split, TaskConfig[]>): void {
  const withoutSplit = (c: TaskConfig) => stableJson({ ...c, split: undefined });
  SPLITS.forEach((a, i) => {
    const first = new Map(sampled[a].map((c) => [withoutSplit(c), c]));
    for (const b of SPLITS.slice(i + 1)) {
      for (const other of sampled[b]) {
        const twin = first.get(withoutSplit(other));
        if (!twin) continue;
        // Same config apart from the split: fine only if the split changes the task that gets built.
        if (!tasksDiffer(fail, family, twin, other)) {
          fail(
            `${a} and ${b} tasks coincide: ${show(twin)} and ${show(other)} build the same task; ` +
              'tasks of different splits must never coincide (derive what you sample from the split, e.g. Rng.from(seed, split))',
          );
        }
      }
    }
  });
}

function tasksDiffer(fail: Fail, family: TaskFamily, a: TaskConfig, b: TaskConfig): boolean {
  const ta = attempt(fail, `build(${show(a)})`, () => family.build(a));
  const tb = attempt(fail, `build(${show(b)})`, () => family.build(b));
  try {
    return tf.tidy(() => {
      const pa = ta.initParams(0);
      const pb = tb.initParams(0);
      if (!deepEqual(snapshotNamed(pa), snapshotNamed(pb))) return true;
      const la = ta.loss(pa, ta.batch(0, 0)).dataSync()[0];
      const lb = tb.loss(pa, tb.batch(0, 0)).dataSync()[0];
      return la !== lb;
    });
  } finally {
    ta.dispose();
    tb.dispose();
  }
}

function disposeNamed(...maps: Array<Readonly<Record<string, tf.Tensor>>>): void {
  for (const m of maps) for (const t of Object.values(m)) if (!t.isDisposed) t.dispose();
}

/** Runs one task through the contract checks; returns its parameter groups. */
function runTask(fail: Fail, family: TaskFamily, config: TaskConfig, seed: number, repeats: number): Record<string, string> {
  const at = `task ${show(config)}`;
  const task = attempt(fail, `build(${show(config)})`, () => family.build(structuredClone(config))) as Task;
  const twin = attempt(fail, `build(${show(config)})`, () => family.build(structuredClone(config))) as Task;
  if (!deepEqual(task.config, config)) fail(`${at}: task.config is ${show(task.config)}, expected the config it was built from`);

  const params = attempt(fail, `${at}: initParams(${seed})`, () => task.initParams(seed));
  if (!params || typeof params !== 'object' || Object.keys(params).length === 0) fail(`${at}: initParams(${seed}) returned no parameters`);
  checkSameStructure(fail, params, params, `${at}: initParams(${seed})`);
  for (const [name, p] of Object.entries(params)) {
    if (p.dtype !== 'float32') fail(`${at}: parameter "${name}" has dtype ${p.dtype}, expected float32`);
    checkFinite(fail, p, `${at}: initial parameter "${name}"`);
  }
  // Parameter groups (optional): every parameter in exactly one kebab-case group, plain JSON, deterministic.
  const groups = attempt(fail, `${at}: parameterGroups()`, () => parameterGroupsOf(task, Object.keys(params)));
  if (typeof task.parameterGroups === 'function') {
    checkPlainJson(fail, task.parameterGroups(), `${at}: parameterGroups()`);
    if (stableJson(parameterGroupsOf(twin, Object.keys(params))) !== stableJson(groups)) fail(`${at}: parameterGroups() is not deterministic (a rebuilt task gave different groups)`);
  }
  const paramsAgain = task.initParams(seed);
  const paramsTwin = twin.initParams(seed);
  const snapParams = snapshotNamed(params);
  if (!deepEqual(snapshotNamed(paramsAgain), snapParams) || !deepEqual(snapshotNamed(paramsTwin), snapParams)) {
    fail(`${at}: initParams(${seed}) is not deterministic (same config and seed gave different parameters)`);
  }

  // Batches are read inside tf.tidy, as the engine does: a task may hand out tensors it keeps.
  const batchOf = (t: Task, step: number): Batch => {
    const b = attempt(fail, `${at}: batch(${step}, ${seed})`, () => t.batch(step, seed));
    if (!b || typeof b !== 'object' || Object.values(b).some((x) => !(x instanceof tf.Tensor))) {
      fail(`${at}: batch(${step}, ${seed}) must return an object of tensors (empty for data-free tasks)`);
    }
    return b;
  };
  for (const step of [0, 3]) {
    const snap = scoped(() => snapshotNamed(batchOf(task, step)));
    const again = scoped(() => snapshotNamed(batchOf(task, step)));
    const fromTwin = scoped(() => snapshotNamed(batchOf(twin, step)));
    if (!deepEqual(again, snap) || !deepEqual(fromTwin, snap)) {
      fail(`${at}: batch(${step}, ${seed}) is not deterministic (same step and seed gave different data)`);
    }
  }

  // Loss: a finite scalar, the same from a rebuilt task.
  const loss = attempt(fail, `${at}: loss`, () => {
    try {
      return tf.tidy(() => task.loss(params, batchOf(task, 0)));
    } catch (e) {
      const gone = Object.keys(params).filter((n) => params[n]!.isDisposed);
      if (gone.length) fail(`${at}: loss disposed parameter(s) ${gone.map((n) => `"${n}"`).join(', ')} (inputs belong to the caller)`);
      throw e;
    }
  });
  if (!(loss instanceof tf.Tensor) || loss.rank !== 0) fail(`${at}: loss must return a scalar tensor, got ${loss instanceof tf.Tensor ? `shape [${loss.shape}]` : show(loss)}`);
  checkFinite(fail, loss, `${at}: loss`);
  const lossTwin = tf.tidy(() => twin.loss(paramsTwin, batchOf(twin, 0)));
  const [l1, l2] = [loss.dataSync()[0], lossTwin.dataSync()[0]];
  loss.dispose();
  lossTwin.dispose();
  if (l1 !== l2) fail(`${at}: loss is not deterministic (${l1} vs ${l2} for the same config, parameters and batch)`);

  // Gradients: every parameter is connected to the loss, and its gradient is finite.
  const names = Object.keys(params);
  const gradsOf = (): NamedTensors =>
    tf.tidy(() => {
      const batch = batchOf(task, 0);
      const gs = tf.grads((...xs: tf.Tensor[]) => task.loss(Object.fromEntries(names.map((n, i) => [n, xs[i]!])), batch))(
        names.map((n) => params[n]!),
      );
      return Object.fromEntries(names.map((n, i) => [n, gs[i]!]));
    });
  let grads: NamedTensors;
  try {
    grads = gradsOf();
  } catch (e) {
    const unconnected = names.filter((n) => {
      try {
        tf.tidy(() => {
          const batch = batchOf(task, 0);
          tf.grad((x: tf.Tensor) => task.loss({ ...params, [n]: x }, batch))(params[n]!);
        });
        return false;
      } catch {
        return true;
      }
    });
    return fail(
      unconnected.length
        ? `${at}: the loss does not depend (differentiably) on parameter(s) ${unconnected.map((n) => `"${n}"`).join(', ')}; every parameter must get a gradient`
        : `${at}: computing gradients threw: ${(e as Error).message}`,
    );
  }
  checkSameStructure(fail, params, grads, `${at}: gradients`);
  for (const [n, g] of Object.entries(grads)) checkFinite(fail, g, `${at}: gradient of "${n}"`);
  disposeNamed(grads);
  checkUnchanged(fail, params, snapParams, `${at}: loss/gradient calls`);

  // Leaks: repeated loss and gradient calls (each inside tf.tidy, as the engine makes them) must not grow
  // the tensor count.
  const once = () => {
    tf.tidy(() => {
      task.loss(params, batchOf(task, 0));
    });
    disposeNamed(gradsOf());
    if (typeof task.fullLoss === 'function') {
      const v = attempt(fail, `${at}: fullLoss()`, () => task.fullLoss!(params));
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${at}: fullLoss() must return a finite number, got ${show(v)}`);
    }
    if (typeof task.metrics === 'function') {
      tf.tidy(() => {
        const m = attempt(fail, `${at}: metrics()`, () => task.metrics!(params));
        if (!m || typeof m !== 'object') fail(`${at}: metrics() must return an object of numbers, got ${show(m)}`);
        for (const [k, v] of Object.entries(m)) {
          if (typeof v !== 'number' || !Number.isFinite(v)) fail(`${at}: metrics() "${k}" must be a finite number, got ${show(v)}`);
        }
      });
    }
  };
  once();
  const start = numTensors();
  for (let i = 0; i < repeats; i++) once();
  const grown = numTensors() - start;
  if (grown !== 0) {
    fail(
      `${at}: ${repeats} loss/gradient calls leaked ${grown} tensor(s) ` +
        `(tensors kept with tf.keep, or variables created, in loss${typeof task.metrics === 'function' ? ', metrics' : ''}${typeof task.fullLoss === 'function' ? ', fullLoss' : ''}?)`,
    );
  }
  checkUnchanged(fail, params, snapParams, `${at}: loss/gradient calls`);

  disposeNamed(params, paramsAgain, paramsTwin);
  attempt(fail, `${at}: dispose()`, () => task.dispose());
  attempt(fail, `${at}: dispose()`, () => twin.dispose());
  return groups;
}
