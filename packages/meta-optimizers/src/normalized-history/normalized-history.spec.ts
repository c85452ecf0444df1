import * as tf from '@tensorflow/tfjs-core';
import { ComponentRegistry, createContainer, disposeTree, Rng, useBackend, type NamedTensors, type TensorTree } from '@l2l/core';
import { checkMetaOptimizer } from '@l2l/core/testing';
import { checkMetaGradient, expectAllClose, flatValues, leakCounts, randomNamed, values, expectOptionErrors } from '../common/spec-helpers';
import { metaOptimizersModule } from '../meta-optimizers-module';
import { normalizedHistoryComponent } from './component';
import { maxMinRows, NormalizedHistoryMetaOptimizer, type NormalizedHistorySlots } from './normalized-history';
import { DEFAULT_MAGNITUDES, type NormalizedHistoryOptions } from './options';

const ctx = { step: 0, training: true };

function registry(): ComponentRegistry {
  return createContainer(metaOptimizersModule).get(ComponentRegistry);
}

/** The optimizer in plain float64 JavaScript, one coordinate at a time, from the formulas in the file's header. */
class ReferenceNormalizedHistory {
  private readonly P: number[][]; // [coordinate][k], oldest first
  private readonly G: number[][];
  private t = 0;

  constructor(
    private readonly o: NormalizedHistoryOptions,
    private readonly w: Record<string, number[][]>,
    theta0: number[],
  ) {
    this.P = theta0.map((v) => new Array(o.historySize).fill(v));
    this.G = theta0.map(() => new Array(o.historySize).fill(0));
  }

  /** The new parameters, given the current ones and their gradient. */
  step(theta: number[], g: number[]): number[] {
    const { historySize: k, magnitudes, minStep, paramInput } = this.o;
    const dot = (row: number[], z: number[]) => row.reduce((s, wv, j) => s + wv * z[j]!, 0);
    const first = this.t++ === 0;
    return theta.map((th, n) => {
      this.P[n] = [...this.P[n]!.slice(1), th];
      this.G[n] = first ? new Array(k).fill(g[n]!) : [...this.G[n]!.slice(1), g[n]!];
      const P = this.P[n]!;
      const G = this.G[n]!;
      const hi = Math.max(...P);
      const lo = Math.min(...P);
      const mid = (hi + lo) / 2;
      const unit = hi - lo + minStep;
      const gNorm = Math.max(...G.map(Math.abs)) || 1;
      const pNorm = Math.max(...P.map(Math.abs)) || 1;
      const pIn = paramInput === 'range' ? P.map((p) => (p - mid) / (unit / 2)) : P.map((p) => p / pNorm);
      const hid = this.w['hidden/kernel']!.map((row) => Math.max(0, dot(row, [...pIn, ...G.map((x) => x / gNorm), 1])));
      const a = this.w['output/kernel']!.map((row) => dot(row, [...hid, 1]));
      const mags = a.slice(0, magnitudes.length);
      const top = Math.max(...mags);
      const e = mags.map((x) => Math.exp(x - top));
      const mu = e.reduce((s, x, i) => s + x * magnitudes[i]!, 0) / e.reduce((s, x) => s + x, 0);
      const [am, ap] = a.slice(magnitudes.length);
      const sigma = (Math.exp(ap!) - Math.exp(am!)) / (Math.exp(ap!) + Math.exp(am!));
      return mid + sigma * mu * unit;
    });
  }
}

describe.each(['wasm', 'cpu'] as const)('normalized-history meta-optimizer on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    [{ historySize: 5, hidden: 6 }],
    [{ historySize: 6, hidden: 4, paramInput: 'infNorm' as const, magnitudes: [0, 0.5, 1], minStep: 0.05 }],
    [{ historySize: 5, hidden: 3, initScale: 4, minStep: 0.3 }],
  ])('updates parameters of any shapes as the formulas say (%j)', (options) => {
    const mo = new NormalizedHistoryMetaOptimizer(options, 11);
    const opt = mo.optimizer();
    const rng = new Rng(5);
    const shapes = { w: [2, 3], b: [4], s: [] as number[] };
    const params = randomNamed(rng, shapes);
    const weights = mo.getWeights();
    const ref = new ReferenceNormalizedHistory(mo.options, Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, t.arraySync() as number[][]])), flatValues(params));
    let expected = flatValues(params);
    let state = opt.init(params);
    // More steps than the window, so that old values leave it; gradients of mixed scales and a zero.
    for (let t = 0; t < 8; t++) {
      const grads = randomNamed(rng, shapes, t === 3 ? 1e-3 : 1);
      const g = flatValues(grads);
      expected = ref.step(expected, g);
      const next = opt.update(state, grads, { step: t, training: false });
      expect(next.step).toBe(t + 1);
      for (const [name, shape] of Object.entries(shapes)) expect(next.params[name]!.shape).toEqual(shape);
      const slots = next.slots as unknown as NormalizedHistorySlots;
      expect(slots.params.shape).toEqual([options.historySize, 11]);
      expect(slots.grads.shape).toEqual([options.historySize, 11]);
      expectAllClose(flatValues(next.params), expected, 2e-5 * Math.max(1, ...expected.map(Math.abs)));
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      tf.dispose(Object.values(grads));
      state = next;
    }
    disposeTree(state as unknown as TensorTree);
    tf.dispose([...Object.values(params), ...Object.values(weights)]);
    mo.dispose();
  });

  it.each(['range', 'infNorm'] as const)('the meta-gradient through an unroll matches finite differences (paramInput %s)', (paramInput) => {
    const mo = new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 4, minStep: 0.5, paramInput, initScale: 2 }, 7);
    const { checked, largest } = checkMetaGradient(mo, { steps: 4, eps: 1e-3, stride: 3, abs: 1e-3, rel: 1e-2 });
    expect(checked).toBeGreaterThan(20);
    expect(largest).toBeGreaterThan(1e-2);
    mo.dispose();
  });

  it('leaks no tensor over repeated updates and meta-gradients', () => {
    const mo = new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 5 }, 1);
    const params = { w: tf.ones([3, 4]), b: tf.zeros([4]) };
    expect(leakCounts(mo, params)).toEqual({ updates: 0, metaGradients: 0 });
    tf.dispose(Object.values(params));
    mo.dispose();
  });

  it('maxMinRows gives max and min over rows and splits the gradient among ties', () => {
    tf.tidy(() => {
      const x = tf.tensor2d([
        [1, 5, 2],
        [3, 5, 2],
        [3, 0, 2],
      ]);
      expect(maxMinRows(x).arraySync()).toEqual([
        [3, 5, 2],
        [1, 0, 2],
      ]);
      // d/dx of Σ (2·max + 3·min): ties share; in the last column max and min are the same three entries.
      const g = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(maxMinRows(y as tf.Tensor2D), tf.tensor2d([[2, 2, 2], [3, 3, 3]]))))(x);
      expectAllClose(g.dataSync(), [3, 1, 5 / 3, 1, 1, 5 / 3, 1, 3, 5 / 3], 1e-6);
    });
  });
});

describe('normalized-history meta-optimizer: behaviour, weights, config and options', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('moves no further than max(grid)·(range + minStep) from the window midpoint, so the first step is at most max(grid)·minStep', () => {
    const mo = new NormalizedHistoryMetaOptimizer({ historySize: 5, initScale: 3, minStep: 0.01 }, 2);
    const opt = mo.optimizer();
    const theta0 = [0.5, -2, 3, 0];
    let state = opt.init({ x: tf.tensor1d(theta0) });
    const history: number[][] = [theta0];
    for (let t = 0; t < 7; t++) {
      const g = { x: tf.tensor1d([1, -1, 0.5, 2]) };
      const next = opt.update(state, g, ctx);
      const x = Array.from(next.params.x!.dataSync());
      const window = history.slice(-5);
      x.forEach((v, i) => {
        const col = window.map((h) => h[i]!);
        const hi = Math.max(...col);
        const lo = Math.min(...col);
        expect(Math.abs(v - (hi + lo) / 2)).toBeLessThanOrEqual(2 * (hi - lo + 0.01) + 1e-6);
        if (t === 0) expect(Math.abs(v - theta0[i]!)).toBeLessThanOrEqual(2 * 0.01 + 1e-7);
      });
      history.push(x);
      disposeTree([state, g] as unknown as TensorTree, next as unknown as TensorTree);
      state = next;
    }
    // The steps moved the parameters: the windows are not flat any more.
    expect(history[history.length - 1]).not.toEqual(theta0);
    disposeTree(state as unknown as TensorTree);
    mo.dispose();
  });

  it('with paramInput "range" it is invariant to shifting and scaling θ (minStep scaled alike) and to scaling g', () => {
    const small = new NormalizedHistoryMetaOptimizer({ historySize: 5, initScale: 3, minStep: 0.1 }, 2);
    const big = new NormalizedHistoryMetaOptimizer({ historySize: 5, initScale: 3, minStep: 0.1 * 100 }, 3);
    const w = small.getWeights();
    big.setWeights(w);
    const theta0 = [0.5, -2, 3];
    const run = (mo: NormalizedHistoryMetaOptimizer, shift: number, scale: number) => {
      const opt = mo.optimizer();
      let state = opt.init({ x: tf.tensor1d(theta0.map((v) => shift + scale * v)) });
      const out: number[][] = [];
      for (let t = 0; t < 6; t++) {
        const g = { x: tf.tensor1d([1, -1, 0.5 + t].map((v) => v / scale)) };
        const next = opt.update(state, g, ctx);
        out.push(Array.from(next.params.x!.dataSync(), (v) => (v - shift) / scale));
        disposeTree([state, g] as unknown as TensorTree, next as unknown as TensorTree);
        state = next;
      }
      disposeTree(state as unknown as TensorTree);
      return out;
    };
    const a = run(small, 0, 1);
    expectAllClose(run(big, 10, 100).flat(), a.flat(), 1e-4);
    // Not vacuous: the parameters moved well away from θ₀.
    expect(Math.max(...a[5]!.map((v, i) => Math.abs(v - theta0[i]!)))).toBeGreaterThan(0.05);
    tf.dispose(Object.values(w));
    [small, big].forEach((m) => m.dispose());
  });

  it('names its variables and initialises them from the seed', () => {
    const a = new NormalizedHistoryMetaOptimizer({ historySize: 7, hidden: 9, magnitudes: [0.1, 1, 3] }, 42);
    const b = new NormalizedHistoryMetaOptimizer({ historySize: 7, hidden: 9, magnitudes: [0.1, 1, 3] }, 43);
    expect(Object.fromEntries(Object.entries(a.variables).map(([k, v]) => [k, v.shape]))).toEqual({
      'hidden/kernel': [9, 15],
      'output/kernel': [5, 10],
    });
    const [wa, wb] = [a.getWeights(), b.getWeights()];
    expect(values(wa)['hidden/kernel']).not.toEqual(values(wb)['hidden/kernel']);
    tf.dispose([...Object.values(wa), ...Object.values(wb)]);
    [a, b].forEach((m) => m.dispose());
  });

  it('weights round trip: a fresh instance given getWeights() makes identical updates', () => {
    const a = new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 4 }, 1);
    const b = new NormalizedHistoryMetaOptimizer({ historySize: 5, hidden: 4 }, 2);
    const rng = new Rng(9);
    const params = randomNamed(rng, { x: [5], y: [2, 2] });
    const grads = [randomNamed(rng, { x: [5], y: [2, 2] }), randomNamed(rng, { x: [5], y: [2, 2] })];
    const run = (mo: NormalizedHistoryMetaOptimizer) => {
      const opt = mo.optimizer();
      const s1 = opt.update(opt.init(params), grads[0]!, ctx);
      const s2 = opt.update(s1, grads[1]!, ctx);
      const out = values(s2.params);
      disposeTree([s1, s2] as unknown as TensorTree, params);
      return out;
    };
    expect(run(b)).not.toEqual(run(a));
    const weights = a.getWeights();
    b.setWeights(weights);
    tf.dispose(Object.values(weights));
    expect(run(b)).toEqual(run(a));
    tf.dispose([...Object.values(params), ...grads.flatMap((g) => Object.values(g))]);
    a.dispose();
    b.dispose();
  });

  it('config() has every default and rebuilds the same meta-optimizer through the registry', () => {
    const reg = registry();
    const mo = reg.create('meta-optimizer', { type: 'normalized-history', options: { historySize: 20 } }, { seed: 5, baseDir: '.' });
    const config = mo.config();
    expect(config).toEqual({
      type: 'normalized-history',
      options: { historySize: 20, hidden: 50, magnitudes: DEFAULT_MAGNITUDES, minStep: 1e-4, paramInput: 'range', initScale: 1 },
    });
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    const twin = reg.create('meta-optimizer', config, { seed: 6, baseDir: '.' });
    expect(twin.config()).toEqual(config);
    const w = mo.getWeights();
    twin.setWeights(w);
    tf.dispose(Object.values(w));
    [mo, twin].forEach((m) => m.dispose());
  });

  it('the registry rejects bad options with a UserError naming the field', () => {
    const reg = registry();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ historySize: 4 }, /historySize must be an integer ≥ 5 and ≤ 100, got 4/],
      [{ historySize: 101 }, /historySize/],
      [{ hidden: 0 }, /hidden/],
      [{ magnitudes: [] }, /magnitudes must have at least 1 items/],
      [{ magnitudes: [0.1, -1] }, /magnitudes\[1\] must be a number ≥ 0/],
      [{ minStep: 0 }, /minStep must be a number > 0/],
      [{ paramInput: 'minmax' }, /paramInput must be one of "range", "infNorm"/],
      [{ k: 10 }, /unknown field "k"/],
    ];
    expectOptionErrors(reg, 'normalized-history', bad);
  });

  it('update checks its inputs against the state', () => {
    const mo = new NormalizedHistoryMetaOptimizer({ historySize: 5 }, 0);
    const opt = mo.optimizer();
    const params: NamedTensors = { a: tf.zeros([2]), b: tf.zeros([3]) };
    const state = opt.init(params);
    expect(() => opt.update(state, { a: tf.zeros([2]) }, ctx)).toThrow(/missing "b"/);
    const other = opt.init({ a: tf.zeros([2]) });
    expect(() => opt.update({ ...state, slots: other.slots }, { a: tf.zeros([2]), b: tf.zeros([3]) }, ctx)).toThrow(/slot params must be a \[5, 5\] tensor/);
    mo.dispose();
  });

  it('passes checkMetaOptimizer', async () => {
    await checkMetaOptimizer(normalizedHistoryComponent, { options: { historySize: 5, hidden: 4 } });
  });
});
