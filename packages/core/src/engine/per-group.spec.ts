import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import type { Task, TaskConfig, TaskFamily } from '../contracts/task';
import { userErrorMessage } from '../testing/user-error';
import { disposeTree, type NamedTensors } from '../tensor-tree';
import { TinyFamily, TinyMeta } from './engine.fixture';
import { metaGradient } from './meta-gradient';
import { checkParameterGroups, familyParameterGroups, groupVariables, PerGroupMetaOptimizer } from './per-group';
import { runOptimizer } from './run';
import { applyTrainingTricks, CONVEX_PARAM } from './tricks';
import { disposeCarry, startRun, unroll } from './unroll';

/** TinyFamily's tasks with x in group "conv" and v in group "fc". */
class GroupedTiny implements TaskFamily {
  readonly type = 'grouped-tiny';
  private readonly inner = new TinyFamily(3);
  sample(seed: number, split: 'train' | 'validation' | 'test'): TaskConfig {
    return this.inner.sample(seed, split);
  }
  build(config: TaskConfig): Task {
    return { ...this.inner.build(config), parameterGroups: () => ({ x: 'conv', v: 'fc' }) };
  }
}

const family = new GroupedTiny();
const task = () => family.build(family.sample(1, 'train'));
const perGroup = (conv: [number, number], fc: [number, number]) => new PerGroupMetaOptimizer({ conv: new TinyMeta(...conv), fc: new TinyMeta(...fc) });

/** Σ of the losses after each of `length` updates from fresh parameters (the meta-loss), without a tape. */
function metaLossOf(meta: PerGroupMetaOptimizer, length: number): number {
  const t = task();
  const carry = startRun(t, meta.optimizer(), t.initParams(3), 0);
  try {
    return tf.tidy(() => {
      const r = unroll(t, meta.optimizer(), carry, { length, lossWeights: 'uniform', secondDerivatives: true, batchSeed: 0, training: true });
      const v = r.metaLoss.dataSync()[0]!;
      disposeCarry(r.next);
      r.losses.dispose();
      return v;
    });
  } finally {
    disposeCarry(carry);
    t.dispose();
  }
}

describe('per-group meta-optimizers (engine/per-group.ts)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('with every group given the same weights, runs exactly as one shared optimizer; with different weights, differently', () => {
    const shared = new TinyMeta(Math.log(0.05), 0.4);
    const same = perGroup([Math.log(0.05), 0.4], [Math.log(0.05), 0.4]);
    const other = perGroup([Math.log(0.05), 0.4], [Math.log(0.2), -0.3]);
    const before = tf.memory().numTensors;
    const run = (m: TinyMeta | PerGroupMetaOptimizer) => {
      const t = task();
      try {
        return Array.from(runOptimizer(t, m.optimizer(), { steps: 8, initSeed: 2, batchSeed: 0 }).losses);
      } finally {
        t.dispose();
      }
    };
    const a = run(shared);
    expect(run(same)).toEqual(a);
    const b = run(other);
    expect(b[0]).toBe(a[0]);
    expect(Math.abs(b[8]! - a[8]!)).toBeGreaterThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
    for (const m of [shared, same, other]) m.dispose();
  });

  it('meta-gradients per group match finite differences of the meta-loss (second derivatives on)', () => {
    const meta = perGroup([Math.log(0.08), 0.3], [Math.log(0.15), -0.2]);
    const t = task();
    const carry = startRun(t, meta.optimizer(), t.initParams(3), 0);
    const before = tf.memory().numTensors;
    const r = metaGradient(t, meta.optimizer(), carry, meta.variables, { length: 4, lossWeights: 'uniform', secondDerivatives: true, batchSeed: 0, training: true });
    expect(Object.keys(r.grads).sort()).toEqual(['conv/a', 'conv/b', 'fc/a', 'fc/b']);
    const analytic = Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, g.dataSync()[0]!]));
    expect(r.metaLoss.dataSync()[0]).toBeCloseTo(metaLossOf(meta, 4), 4);
    disposeTree([r.metaLoss, r.losses, r.grads as unknown as tf.Tensor[]]);
    disposeCarry(r.next);
    expect(tf.memory().numTensors).toBe(before);
    disposeCarry(carry);
    t.dispose();
    const eps = 1e-2;
    for (const name of Object.keys(analytic)) {
      const v = meta.variables[name]!;
      const x = v.dataSync()[0]!;
      v.assign(tf.scalar(x + eps));
      const up = metaLossOf(meta, 4);
      v.assign(tf.scalar(x - eps));
      const down = metaLossOf(meta, 4);
      v.assign(tf.scalar(x));
      const fd = (up - down) / (2 * eps);
      expect(Math.abs(analytic[name]!)).toBeGreaterThan(1e-3);
      expect(Math.abs(analytic[name]! - fd)).toBeLessThan(2e-2 * Math.abs(fd) + 1e-4);
    }
    meta.dispose();
  });

  it('names weights <group>/<name>, round-trips them, and refuses weights of other groups', () => {
    const meta = perGroup([0.1, 0.2], [0.3, 0.4]);
    expect(meta.config()).toEqual({ type: 'per-group', options: { groups: { conv: { type: 'tiny-meta', options: {} }, fc: { type: 'tiny-meta', options: {} } } } });
    const w = meta.getWeights();
    expect(Object.fromEntries(Object.entries(w).map(([k, t]) => [k, t.dataSync()[0]]))).toEqual({ 'conv/a': expect.closeTo(0.1), 'conv/b': expect.closeTo(0.2), 'fc/a': expect.closeTo(0.3), 'fc/b': expect.closeTo(0.4) });
    const twin = perGroup([0, 0], [0, 0]);
    twin.setWeights(w);
    expect(twin.variables['fc/b']!.dataSync()[0]).toBeCloseTo(0.4);
    const { 'fc/b': dropped, ...rest } = w;
    expect(() => twin.setWeights(rest)).toThrow(/missing fc\/b/);
    expect(() => twin.setWeights({ ...w, 'dense/a': dropped! })).toThrow(/not its own: dense\/a/);
    disposeTree(w);
    twin.dispose();
    meta.dispose();
  });

  it('refuses parameters of a group it has no optimizer for, and no groups at all (everything in "all")', () => {
    const meta = new PerGroupMetaOptimizer({ conv: new TinyMeta() });
    const params: NamedTensors = { x: tf.zeros([2]), v: tf.zeros([2]) };
    expect(() => meta.optimizer().init(params, { x: 'conv', v: 'fc' })).toThrow(/parameter "v" is in group "fc", which has no optimizer here \(groups: conv\)/);
    expect(() => meta.optimizer().init(params)).toThrow(/group "all"/);
    disposeTree(params);
    meta.dispose();
  });

  it('checkParameterGroups: one-line user errors naming the file and field for an unknown or an uncovered group', () => {
    expect(familyParameterGroups(family)).toEqual(['conv', 'fc']);
    const extra = new PerGroupMetaOptimizer({ conv: new TinyMeta(), fc: new TinyMeta(), dense: new TinyMeta() });
    const short = new PerGroupMetaOptimizer({ conv: new TinyMeta() });
    const ok = perGroup([0, 0], [0, 0]);
    const fails = (m: PerGroupMetaOptimizer) => userErrorMessage(() => checkParameterGroups(m, family, 'x.json: metaOptimizer'));
    expect(fails(extra)).toBe('x.json: metaOptimizer.options.groups: no parameter group "dense" (optimizee "grouped-tiny" has parameter groups "conv", "fc")');
    expect(fails(short)).toBe('x.json: metaOptimizer.options.groups: no meta-optimizer for group "fc" (optimizee "grouped-tiny" has parameter groups "conv", "fc"; give each one)');
    expect(() => checkParameterGroups(ok, family, 'x')).not.toThrow();
    // A family without groups is one group, "all".
    expect(() => checkParameterGroups(ok, new TinyFamily(), 'x.json: metaOptimizer')).toThrow(/no parameter group "conv", "fc" \(optimizee "tiny" has parameter groups "all"\)/);
    for (const m of [extra, short, ok]) m.dispose();
  });

  it('training tricks keep the task\'s groups (the convex coordinates join its first group)', () => {
    const t = applyTrainingTricks(task(), { randomScale: 1, convexCombination: true }, 5);
    expect(t.parameterGroups?.()).toEqual({ x: 'conv', v: 'fc', [CONVEX_PARAM]: 'conv' });
    t.dispose();
  });

  it('groupVariables: conv-fc by rank, or by name with every variable named', () => {
    const vars = { k: tf.zeros([1, 1, 1, 2]), b: tf.zeros([2]) };
    expect(groupVariables(vars, 'conv-fc', 'V')).toEqual({ k: 'conv', b: 'fc' });
    expect(groupVariables(vars, { k: 'a', b: 'b' }, 'V')).toEqual({ k: 'a', b: 'b' });
    expect(groupVariables(vars, undefined, 'V')).toBeUndefined();
    expect(() => groupVariables(vars, { k: 'a' }, 'V')).toThrow('V: groups gives no group for variable(s) "b"');
    disposeTree(vars);
  });
});
