import * as tf from '@tensorflow/tfjs-core';
import { ComponentRegistry, createContainer, disposeTree, Rng, useBackend, type NamedTensors, type TensorTree } from '@l2l/core';
import { checkMetaOptimizer } from '@l2l/core/testing';
import { checkMetaGradient, expectAllClose, flatValues, leakCounts, randomNamed, values, expectOptionErrors } from '../common/spec-helpers';
import { metaOptimizersModule } from '../meta-optimizers-module';
import { rnnpropComponent } from './component';
import type { RnnpropOptions } from './options';
import { RnnpropMetaOptimizer, type RnnpropLayerState, type RnnpropSlots } from './rnnprop';

const ctx = { step: 0, training: true };

function registry(): ComponentRegistry {
  return createContainer(metaOptimizersModule).get(ComponentRegistry);
}

/** RNNprop in plain float64 JavaScript, straight from the paper and the authors' code, one coordinate at a time. */
class ReferenceRnnprop {
  private readonly h: number[][][]; // [layer][coordinate][unit]
  private readonly c: number[][][];
  private readonly m: number[];
  private readonly v: number[];
  private t = 0;

  constructor(
    private readonly o: RnnpropOptions,
    private readonly w: Record<string, number[][]>,
    n: number,
  ) {
    const zeros = () => Array.from({ length: o.layers }, () => Array.from({ length: n }, () => new Array(o.hidden).fill(0)));
    this.h = zeros();
    this.c = zeros();
    this.m = new Array(n).fill(0);
    this.v = new Array(n).fill(0);
  }

  /** The update Δθ of every coordinate for the flattened gradient `g`. */
  step(g: number[]): number[] {
    const { beta1, beta2, epsilon, lr, layers, hidden: H } = this.o;
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const elu = (x: number) => (x > 0 ? x : Math.exp(x) - 1);
    const dot = (row: number[], z: number[]) => row.reduce((s, wv, j) => s + wv * z[j]!, 0);
    this.t++;
    return g.map((gi, n) => {
      this.m[n] = beta1 * this.m[n]! + (1 - beta1) * gi;
      this.v[n] = beta2 * this.v[n]! + (1 - beta2) * gi * gi;
      const sv = Math.sqrt(this.v[n]! / (1 - beta2 ** this.t)) + epsilon;
      const inputs = [gi / sv, this.m[n]! / (1 - beta1 ** this.t) / sv, 1];
      let x = this.w['input/kernel']!.map((row) => elu(dot(row, inputs)));
      for (let l = 0; l < layers; l++) {
        const a = this.w[`lstm${l}/kernel`]!.map((row) => dot(row, [...x, ...this.h[l]![n]!, 1]));
        const c2 = Array.from({ length: H }, (_, u) => sig(a[H + u]!) * this.c[l]![n]![u]! + sig(a[u]!) * Math.tanh(a[2 * H + u]!));
        const h2 = c2.map((cu, u) => sig(a[3 * H + u]!) * Math.tanh(cu));
        this.h[l]![n] = h2;
        this.c[l]![n] = c2;
        x = h2;
      }
      return -lr * Math.tanh(dot(this.w['output/kernel']![0]!, [...x, 1]));
    });
  }
}

describe.each(['wasm', 'cpu'] as const)('rnnprop meta-optimizer on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    [{ inputUnits: 4, layers: 2, hidden: 3 }],
    [{ inputUnits: 3, layers: 1, hidden: 2, beta1: 0.5, beta2: 0.9, lr: 0.3, forgetBias: 0 }],
    [{ inputUnits: 2, layers: 3, hidden: 2, initScale: 3, epsilon: 1e-3 }],
  ])('updates parameters of any shapes as the paper\'s RNNprop does (%j)', (options) => {
    const mo = new RnnpropMetaOptimizer(options, 11);
    const opt = mo.optimizer();
    const rng = new Rng(5);
    const shapes = { w: [2, 3], b: [4], s: [] as number[], t: [1, 2, 1] };
    const params = randomNamed(rng, shapes);
    const weights = mo.getWeights();
    const ref = new ReferenceRnnprop(mo.options, Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, t.arraySync() as number[][]])), 13);
    let expected = flatValues(params);
    let state = opt.init(params);
    for (let t = 0; t < 4; t++) {
      // Gradients of very different scales (RNNprop's inputs do not care), and a zero.
      const grads = randomNamed(rng, shapes, t === 0 ? 1e-4 : t === 2 ? 50 : 1);
      const g = flatValues(grads);
      const delta = ref.step(g);
      expected = expected.map((v, i) => v + delta[i]!);
      const next = opt.update(state, grads, { step: t, training: false });
      expect(next.step).toBe(t + 1);
      expect(Object.keys(next.params)).toEqual(Object.keys(shapes));
      for (const [name, shape] of Object.entries(shapes)) expect(next.params[name]!.shape).toEqual(shape);
      const slots = next.slots as unknown as RnnpropSlots;
      expect(slots.m.shape).toEqual([1, 13]);
      expect(slots.v.shape).toEqual([1, 13]);
      for (let l = 0; l < options.layers; l++) {
        const layer = slots[`lstm${l}`] as RnnpropLayerState;
        expect(layer.h.shape).toEqual([options.hidden, 13]);
        expect(layer.c.shape).toEqual([options.hidden, 13]);
      }
      // Steps are bounded by α.
      expect(delta.every((d) => Math.abs(d) <= mo.options.lr)).toBe(true);
      expectAllClose(flatValues(next.params), expected, 2e-5);
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      tf.dispose(Object.values(grads));
      state = next;
    }
    disposeTree(state as unknown as TensorTree);
    tf.dispose([...Object.values(params), ...Object.values(weights)]);
    mo.dispose();
  });

  it('the meta-gradient through an unroll matches finite differences', () => {
    const mo = new RnnpropMetaOptimizer({ inputUnits: 3, hidden: 3, lr: 0.5 }, 3);
    const { checked, largest } = checkMetaGradient(mo, { steps: 3 });
    expect(checked).toBeGreaterThan(40);
    expect(largest).toBeGreaterThan(1e-2);
    mo.dispose();
  });

  it('leaks no tensor over repeated updates and meta-gradients', () => {
    const mo = new RnnpropMetaOptimizer({ hidden: 5 }, 1);
    const params = { w: tf.ones([3, 4]), b: tf.zeros([4]) };
    expect(leakCounts(mo, params)).toEqual({ updates: 0, metaGradients: 0 });
    tf.dispose(Object.values(params));
    mo.dispose();
  });
});

describe('rnnprop meta-optimizer: weights, config and options', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('names its variables and initialises them from the seed', () => {
    const a = new RnnpropMetaOptimizer({ hidden: 6, inputUnits: 5, forgetBias: 1.5 }, 42);
    const b = new RnnpropMetaOptimizer({ hidden: 6, inputUnits: 5, forgetBias: 1.5 }, 42);
    const c = new RnnpropMetaOptimizer({ hidden: 6, inputUnits: 5, forgetBias: 1.5 }, 43);
    expect(Object.keys(a.variables)).toEqual(['input/kernel', 'lstm0/kernel', 'lstm1/kernel', 'output/kernel']);
    expect(a.variables['input/kernel']!.shape).toEqual([5, 3]);
    expect(a.variables['lstm0/kernel']!.shape).toEqual([24, 5 + 6 + 1]);
    expect(a.variables['lstm1/kernel']!.shape).toEqual([24, 6 + 6 + 1]);
    expect(a.variables['output/kernel']!.shape).toEqual([1, 7]);
    const [wa, wb, wc] = [a.getWeights(), b.getWeights(), c.getWeights()];
    for (const name of Object.keys(wa)) {
      expect(values(wa)[name]).toEqual(values(wb)[name]);
      expect(values(wa)[name]).not.toEqual(values(wc)[name]);
    }
    const kernel = wa['lstm1/kernel']!.arraySync() as number[][];
    expect(kernel.map((row) => row[12])).toEqual([...Array(6).fill(0), ...Array(6).fill(1.5), ...Array(12).fill(0)]);
    tf.dispose([...Object.values(wa), ...Object.values(wb), ...Object.values(wc)]);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('weights round trip: a fresh instance given getWeights() makes identical updates', () => {
    const a = new RnnpropMetaOptimizer({ hidden: 4, layers: 3 }, 1);
    const b = new RnnpropMetaOptimizer({ hidden: 4, layers: 3 }, 2);
    const rng = new Rng(9);
    const params = randomNamed(rng, { x: [5], y: [2, 2] });
    const grads = randomNamed(rng, { x: [5], y: [2, 2] });
    const run = (mo: RnnpropMetaOptimizer) => {
      const opt = mo.optimizer();
      const s1 = opt.update(opt.init(params), grads, ctx);
      const s2 = opt.update(s1, grads, ctx);
      const out = values(s2.params);
      disposeTree([s1, s2] as unknown as TensorTree, params);
      return out;
    };
    expect(run(b)).not.toEqual(run(a));
    const weights = a.getWeights();
    b.setWeights(weights);
    tf.dispose(Object.values(weights));
    const ra = run(a);
    expect(run(b)).toEqual(ra);
    expect(ra.x).not.toEqual(Array.from(params.x!.dataSync()));
    tf.dispose([...Object.values(params), ...Object.values(grads)]);
    a.dispose();
    b.dispose();
  });

  it('config() has every default and rebuilds the same meta-optimizer through the registry', () => {
    const reg = registry();
    const mo = reg.create('meta-optimizer', { type: 'rnnprop', options: { hidden: 7, beta1: 0.9 } }, { seed: 5, baseDir: '.' });
    const config = mo.config();
    expect(config).toEqual({
      type: 'rnnprop',
      options: { inputUnits: 20, layers: 2, hidden: 7, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, lr: 0.1, initScale: 1, forgetBias: 1 },
    });
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    const twin = reg.create('meta-optimizer', config, { seed: 6, baseDir: '.' });
    expect(twin.config()).toEqual(config);
    const w = mo.getWeights();
    twin.setWeights(w);
    const w2 = twin.getWeights();
    expect(values(w2)).toEqual(values(w));
    tf.dispose([...Object.values(w), ...Object.values(w2)]);
    [mo, twin].forEach((m) => m.dispose());
  });

  it('the registry rejects bad options with a UserError naming the field', () => {
    const reg = registry();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ hidden: 'x' }, /hidden must be an integer ≥ 1, got "x"/],
      [{ inputUnits: 0 }, /inputUnits/],
      [{ beta1: 1 }, /beta1/],
      [{ beta2: -0.1 }, /beta2/],
      [{ lr: 0 }, /lr must be a number > 0/],
      [{ epsilon: -1 }, /epsilon/],
      [{ alpha: 0.1 }, /unknown field "alpha"/],
    ];
    expectOptionErrors(reg, 'rnnprop', bad);
    expect(() => new RnnpropMetaOptimizer({ lr: -1 })).toThrow(/lr/);
  });

  it('update checks its inputs against the state', () => {
    const mo = new RnnpropMetaOptimizer({ hidden: 2 }, 0);
    const opt = mo.optimizer();
    const params = { a: tf.zeros([2]), b: tf.zeros([3]) };
    const state = opt.init(params);
    expect(() => opt.update(state, { a: tf.zeros([2]) }, ctx)).toThrow(/missing "b"/);
    const other = opt.init({ a: tf.zeros([2]) });
    expect(() => opt.update({ ...state, slots: other.slots }, { a: tf.zeros([2]), b: tf.zeros([3]) }, ctx)).toThrow(/slot m must be a \[1, 5\] tensor/);
    const noLstm = { ...(state.slots as Record<string, TensorTree>), lstm1: undefined };
    expect(() => opt.update({ ...state, slots: noLstm }, { a: tf.zeros([2]), b: tf.zeros([3]) }, ctx)).toThrow(/lstm1\.h must be a \[2, 5\]/);
    mo.dispose();
  });

  it('passes checkMetaOptimizer', async () => {
    await checkMetaOptimizer(rnnpropComponent, { options: { hidden: 4, inputUnits: 4 } });
  });

  it('its loss-free update is scale-invariant in the gradients (up to epsilon), as the paper intends', () => {
    const mo = new RnnpropMetaOptimizer({ hidden: 3, epsilon: 1e-12 }, 4);
    const opt = mo.optimizer();
    const params: NamedTensors = { x: tf.tensor1d([0.5, -1, 2]) };
    const stepWith = (scale: number) => {
      let state = opt.init(params);
      for (let t = 0; t < 3; t++) {
        const g = { x: tf.mul(tf.tensor1d([1, -2, 0.5 * (t + 1)]), scale) };
        const next = opt.update(state, g, ctx);
        disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
        tf.dispose(Object.values(g));
        state = next;
      }
      const out = Array.from(state.params.x!.dataSync());
      disposeTree(state as unknown as TensorTree);
      return out;
    };
    expectAllClose(stepWith(1e3), stepWith(1), 1e-5);
    tf.dispose(Object.values(params));
    mo.dispose();
  });
});
