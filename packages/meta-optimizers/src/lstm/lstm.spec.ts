import * as tf from '@tensorflow/tfjs-core';
import {
  ComponentRegistry,
  createContainer,
  disposeTree,
  Rng,
  useBackend,
  type NamedTensors,
  type OptimizerState,
  type TensorTree,
} from '@l2l/core';
import { metaOptimizersModule } from '../meta-optimizers-module';
import { expectOptionErrors } from '../common/spec-helpers';
import { LstmMetaOptimizer, type LstmSlots } from './lstm';
import type { LstmOptions } from './options';

const ctx = { step: 0, training: true };

function registry(): ComponentRegistry {
  return createContainer(metaOptimizersModule).get(ComponentRegistry);
}

function randomNamed(rng: Rng, shapes: Record<string, number[]>, std = 1): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, shape] of Object.entries(shapes)) {
    out[name] = tf.tensor(rng.normals(shape.reduce((a, b) => a * b, 1), 0, std), shape);
  }
  return out;
}

function values(named: NamedTensors): Record<string, number[]> {
  return Object.fromEntries(Object.entries(named).map(([k, t]) => [k, Array.from(t.dataSync())]));
}

/**
 * The optimizer written out in plain float64 JavaScript, straight from the paper: one LSTM per coordinate
 * (weights shared), gates in the order input, forget, cell candidate, output.
 */
class ReferenceLstm {
  private readonly h: number[][][]; // [layer][coordinate][unit]
  private readonly c: number[][][];

  constructor(
    private readonly o: LstmOptions,
    private readonly w: Record<string, number[][]>,
    n: number,
  ) {
    this.h = Array.from({ length: o.layers }, () => Array.from({ length: n }, () => new Array(o.hidden).fill(0)));
    this.c = Array.from({ length: o.layers }, () => Array.from({ length: n }, () => new Array(o.hidden).fill(0)));
  }

  private features(g: number): number[] {
    const { k, preprocessing } = this.o;
    if (preprocessing === 'none') return [g];
    return Math.abs(g) >= Math.exp(-k) ? [Math.log(Math.abs(g)) / k, Math.sign(g)] : [-1, Math.exp(k) * g];
  }

  /** The update Δθ of every coordinate for the flattened gradient `g`. */
  step(g: number[]): number[] {
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const H = this.o.hidden;
    return g.map((gi, n) => {
      let x = this.features(gi);
      for (let l = 0; l < this.o.layers; l++) {
        const K = this.w[`lstm${l}/kernel`]!;
        const z = [...x, ...this.h[l]![n]!, 1];
        const a = K.map((row) => row.reduce((s, v, j) => s + v * z[j]!, 0));
        const h2: number[] = [];
        const c2: number[] = [];
        for (let u = 0; u < H; u++) {
          c2[u] = sig(a[H + u]!) * this.c[l]![n]![u]! + sig(a[u]!) * Math.tanh(a[2 * H + u]!);
          h2[u] = sig(a[3 * H + u]!) * Math.tanh(c2[u]!);
        }
        this.h[l]![n] = h2;
        this.c[l]![n] = c2;
        x = h2;
      }
      const W = this.w['output/kernel']![0]!;
      return this.o.outputScale * (x.reduce((s, v, j) => s + v * W[j]!, 0) + W[H]!);
    });
  }
}

function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  if (!(worst <= tol)) throw new Error(`max difference ${worst} > ${tol}: ${Array.from(actual).slice(0, 8)} vs ${Array.from(expected).slice(0, 8)}`);
}

describe.each(['wasm', 'cpu'] as const)('lstm meta-optimizer on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    [{ layers: 2, hidden: 3, outputScale: 0.5 }],
    [{ layers: 1, hidden: 3, preprocessing: 'none' as const, outputScale: 0.3, forgetBias: 0 }],
    [{ layers: 3, hidden: 3, k: 5, initScale: 2 }],
  ])('updates parameters of any shapes as the paper\'s coordinatewise LSTM does (%j)', (options) => {
    const mo = new LstmMetaOptimizer(options, 11);
    const opt = mo.optimizer();
    const rng = new Rng(5);
    const shapes = { w: [2, 3], b: [4], s: [] as number[], t: [1, 2, 1] };
    const params = randomNamed(rng, shapes);
    const weights = mo.getWeights();
    const ref = new ReferenceLstm(mo.options, Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, t.arraySync() as number[][]])), 13);
    let expected = Object.values(values(params)).flat();
    let state = opt.init(params);
    expect(state.step).toBe(0);
    for (let t = 0; t < 4; t++) {
      // Gradients on both sides of logAndSign's threshold, zero included.
      const grads = randomNamed(rng, shapes, t === 0 ? 1e-6 : 2);
      const g = Object.values(values(grads)).flat();
      if (t === 1) g[0] = 0;
      const gradsUsed = t === 1 ? { ...grads, w: tf.tensor(g.slice(0, 6), [2, 3]) } : grads;
      const delta = ref.step(g);
      expected = expected.map((v, i) => v + delta[i]!);
      const next = opt.update(state, gradsUsed, { step: t, training: false });
      expect(next.step).toBe(t + 1);
      for (const [name, shape] of Object.entries(shapes)) expect(next.params[name]!.shape).toEqual(shape);
      expect(Object.keys(next.params)).toEqual(Object.keys(shapes));
      const slots = next.slots as unknown as LstmSlots;
      expect(Object.keys(slots)).toEqual(Array.from({ length: options.layers }, (_, l) => `lstm${l}`));
      for (const layer of Object.values(slots)) {
        expect(layer.h.shape).toEqual([3, 13]);
        expect(layer.c.shape).toEqual([3, 13]);
      }
      expectAllClose(Object.values(values(next.params)).flat(), expected, 2e-5);
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      tf.dispose([...Object.values(grads), ...Object.values(gradsUsed)]);
      state = next;
    }
    disposeTree(state as unknown as TensorTree);
    tf.dispose([...Object.values(params), ...Object.values(weights)]);
    mo.dispose();
  });

  it('the meta-gradient through an unroll matches finite differences', () => {
    const options = { layers: 2, hidden: 4, outputScale: 1 };
    const mo = new LstmMetaOptimizer(options, 3);
    const opt = mo.optimizer();
    const curvature = tf.tensor1d([0.5, 1, 2]);
    const theta0 = tf.tensor1d([1, -0.5, 0.25]);
    const f = (p: tf.Tensor) => tf.mul(tf.sum(tf.mul(curvature, tf.square(p))), 0.5) as tf.Scalar;
    /**
     * L(φ) = Σ_t f(θ_t) over 3 updates. Optimizee gradients are constants for the meta-gradient: taken
     * from a copy of θ without a tape (recorded), or replayed from a recording (for finite differences).
     */
    const metaLoss = (record?: Float32Array[], replay?: Float32Array[]) => (): tf.Scalar => {
      let state: OptimizerState = opt.init({ theta: theta0 });
      let total = tf.scalar(0);
      for (let t = 0; t < 3; t++) {
        let g: tf.Tensor;
        if (replay) g = tf.tensor1d(replay[t]!);
        else {
          const detached = tf.tensor(state.params.theta!.dataSync(), [3]);
          g = tf.mul(curvature, detached);
          record?.push(Float32Array.from(g.dataSync()));
        }
        state = opt.update(state, { theta: g }, { step: t, training: true });
        total = tf.add(total, f(state.params.theta!));
      }
      return total;
    };
    const recorded: Float32Array[] = [];
    const { value, grads } = tf.variableGrads(metaLoss(recorded), Object.values(mo.variables));
    expect(recorded).toHaveLength(3);
    const lossAt = (weights: NamedTensors): number => {
      mo.setWeights(weights);
      return tf.tidy(() => metaLoss(undefined, recorded)().dataSync()[0]!);
    };
    const base = mo.getWeights();
    expect(lossAt(base)).toBeCloseTo(value.dataSync()[0]!, 5);
    const eps = 1e-2;
    let checked = 0;
    let largest = 0;
    for (const [name, variable] of Object.entries(mo.variables)) {
      const analytic = grads[variable.name]!.dataSync();
      const size = variable.size;
      // Every 5th entry and the last (a bias), in each weight.
      const entries = [...Array.from({ length: Math.ceil(size / 5) }, (_, i) => i * 5), size - 1];
      for (const e of entries) {
        const at = (delta: number) => {
          const w = { ...base, [name]: tf.tidy(() => {
            const v = Float32Array.from(base[name]!.dataSync());
            v[e] = v[e]! + delta;
            return tf.tensor(v, base[name]!.shape);
          }) };
          const l = lossAt(w);
          w[name]!.dispose();
          return l;
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        largest = Math.max(largest, Math.abs(numeric));
        if (Math.abs(analytic[e]! - numeric) > 5e-4 + 5e-3 * Math.abs(numeric)) {
          throw new Error(`${name}[${e}]: meta-gradient ${analytic[e]} but finite differences give ${numeric}`);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
    expect(largest).toBeGreaterThan(1e-2); // the check is not vacuous
    mo.setWeights(base);
    tf.dispose([value, ...Object.values(grads), ...Object.values(base), curvature, theta0]);
    mo.dispose();
  });

  it('leaks no tensor over repeated updates and meta-gradients', () => {
    const mo = new LstmMetaOptimizer({ hidden: 5 }, 1);
    const opt = mo.optimizer();
    const params = { w: tf.ones([3, 4]), b: tf.zeros([4]) };
    const run = (steps: number) => {
      let state = opt.init(params);
      for (let t = 0; t < steps; t++) {
        const grads = tf.tidy(() => ({ w: tf.mul(state.params.w!, 0.3), b: tf.sub(state.params.b!, 1) }));
        const next = opt.update(state, grads, { step: t, training: false });
        disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
        tf.dispose(Object.values(grads));
        state = next;
      }
      disposeTree(state as unknown as TensorTree);
    };
    run(2);
    const before = tf.memory().numTensors;
    run(5);
    run(9);
    expect(tf.memory().numTensors).toBe(before);
    const meta = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          let state = opt.init(params);
          let total = tf.scalar(0);
          for (let t = 0; t < 3; t++) {
            const g = { w: tf.tensor(state.params.w!.dataSync(), [3, 4]), b: tf.tensor(state.params.b!.dataSync(), [4]) };
            state = opt.update(state, g, { step: t, training: true });
            total = tf.add(total, tf.sum(tf.square(state.params.w!)));
          }
          return total;
        }, Object.values(mo.variables));
        return [value, ...Object.values(grads)];
      });
    tf.dispose(meta());
    const before2 = tf.memory().numTensors;
    tf.dispose(meta());
    tf.dispose(meta());
    expect(tf.memory().numTensors).toBe(before2);
    tf.dispose(Object.values(params));
    mo.dispose();
  });
});

describe('lstm meta-optimizer: weights, config and options', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('names its variables and initialises them from the seed: same seed, same weights; another seed, others', () => {
    const a = new LstmMetaOptimizer({ hidden: 6, forgetBias: 1.5 }, 42);
    const b = new LstmMetaOptimizer({ hidden: 6, forgetBias: 1.5 }, 42);
    const c = new LstmMetaOptimizer({ hidden: 6, forgetBias: 1.5 }, 43);
    expect(Object.keys(a.variables)).toEqual(['lstm0/kernel', 'lstm1/kernel', 'output/kernel']);
    expect(a.variables['lstm0/kernel']!.shape).toEqual([24, 2 + 6 + 1]);
    expect(a.variables['lstm1/kernel']!.shape).toEqual([24, 6 + 6 + 1]);
    expect(a.variables['output/kernel']!.shape).toEqual([1, 7]);
    for (const v of Object.values(a.variables)) expect(v.trainable).toBe(true);
    const [wa, wb, wc] = [a.getWeights(), b.getWeights(), c.getWeights()];
    for (const name of Object.keys(wa)) {
      expect(Array.from(wa[name]!.dataSync())).toEqual(Array.from(wb[name]!.dataSync()));
      expect(Array.from(wa[name]!.dataSync())).not.toEqual(Array.from(wc[name]!.dataSync()));
    }
    // Bias column: forget-gate rows start at forgetBias, every other gate at 0.
    const kernel = wa['lstm1/kernel']!.arraySync() as number[][];
    expect(kernel.map((row) => row[12])).toEqual([...Array(6).fill(0), ...Array(6).fill(1.5), ...Array(12).fill(0)]);
    expect((wa['output/kernel']!.arraySync() as number[][])[0]![6]).toBe(0);
    tf.dispose([...Object.values(wa), ...Object.values(wb), ...Object.values(wc)]);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('weights round trip: a fresh instance given getWeights() makes identical updates', () => {
    const a = new LstmMetaOptimizer({ hidden: 4, layers: 3 }, 1);
    const b = new LstmMetaOptimizer({ hidden: 4, layers: 3 }, 2);
    const weights = a.getWeights();
    b.setWeights(weights);
    tf.dispose(Object.values(weights));
    const rng = new Rng(9);
    const params = randomNamed(rng, { x: [5], y: [2, 2] });
    const grads = randomNamed(rng, { x: [5], y: [2, 2] });
    const run = (mo: LstmMetaOptimizer) => {
      const opt = mo.optimizer();
      const s1 = opt.update(opt.init(params), grads, ctx);
      const s2 = opt.update(s1, grads, ctx);
      const out = values(s2.params);
      disposeTree([s1, s2] as unknown as TensorTree, params);
      return out;
    };
    const ra = run(a);
    expect(run(b)).toEqual(ra);
    expect(ra.x).not.toEqual(Array.from(params.x!.dataSync())); // the update did something
    tf.dispose([...Object.values(params), ...Object.values(grads)]);
    a.dispose();
    b.dispose();
  });

  it('setWeights names the weight whose name or shape is wrong, and changes nothing then', () => {
    const mo = new LstmMetaOptimizer({ hidden: 2 }, 0);
    const w = mo.getWeights();
    const before = values(w);
    const cases: Array<[NamedTensors, RegExp]> = [
      [{ ...w, 'lstm2/kernel': tf.zeros([8, 5]) }, /unknown weight "lstm2\/kernel"/],
      [Object.fromEntries(Object.entries(w).filter(([k]) => k !== 'output/kernel')), /missing weight "output\/kernel"/],
      [{ ...w, 'lstm1/kernel': tf.zeros([8, 4]) }, /weight "lstm1\/kernel" has shape \[8, 4\], expected \[8, 5\]/],
      [{ ...w, 'lstm0/kernel': tf.zeros([8, 5]), 'lstm1/kernel': tf.zeros([5, 8]) }, /"lstm1\/kernel" has shape \[5, 8\]/],
    ];
    for (const [weights, message] of cases) expect(() => mo.setWeights(weights)).toThrow(message);
    expect(values(mo.getWeights())).toEqual(before);
    tf.dispose(cases.flatMap(([weights]) => Object.values(weights).filter((t) => !Object.values(w).includes(t))));
    tf.dispose(Object.values(w));
    mo.dispose();
    expect(() => mo.variables).toThrow(/after dispose/);
  });

  it('config() has every default and rebuilds the same meta-optimizer through the registry', () => {
    const reg = registry();
    const mo = reg.create('meta-optimizer', { type: 'lstm', options: { hidden: 7, preprocessing: 'none' } }, { seed: 5, baseDir: '.' });
    const config = mo.config();
    expect(config).toEqual({
      type: 'lstm',
      options: { layers: 2, hidden: 7, preprocessing: 'none', k: 10, outputScale: 0.1, initScale: 1, forgetBias: 1 },
    });
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    const twin = reg.create('meta-optimizer', config, { seed: 6, baseDir: '.' });
    expect(twin.config()).toEqual(config);
    expect(twin.variables['lstm0/kernel']!.shape).toEqual([28, 1 + 7 + 1]);
    const w = mo.getWeights();
    twin.setWeights(w);
    tf.dispose(Object.values(w));
    // The seed comes from the factory's context.
    const same = reg.create('meta-optimizer', config, { seed: 5, baseDir: '.' });
    const [w1, w2] = [mo.getWeights(), same.getWeights()];
    expect(values(w1)).toEqual(values(w2));
    tf.dispose([...Object.values(w1), ...Object.values(w2)]);
    [mo, twin, same].forEach((m) => m.dispose());
  });

  it('the registry rejects bad options with a UserError naming the field', () => {
    const reg = registry();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ hidden: 'x' }, /hidden must be an integer ≥ 1, got "x"/],
      [{ hidden: 0 }, /hidden/],
      [{ layers: 1.5 }, /layers/],
      [{ preprocessing: 'log' }, /preprocessing must be one of "none", "logAndSign"/],
      [{ k: 0 }, /k must be a number > 0/],
      [{ forgetbias: 1 }, /unknown field "forgetbias"/],
    ];
    expectOptionErrors(reg, 'lstm', bad);
    // Direct construction validates the same way.
    expect(() => new LstmMetaOptimizer({ hidden: 'x' as unknown as number })).toThrow(/hidden/);
  });

  it('update checks its inputs against the state', () => {
    const mo = new LstmMetaOptimizer({ hidden: 2 }, 0);
    const opt = mo.optimizer();
    const params = { a: tf.zeros([2]), b: tf.zeros([3]) };
    const state = opt.init(params);
    expect(() => opt.update(state, { a: tf.zeros([2]) }, ctx)).toThrow(/missing "b"/);
    expect(() => opt.update(state, { a: tf.zeros([2]), b: tf.zeros([4]) }, ctx)).toThrow(/"b" has shape \[4\], expected \[3\]/);
    const other = opt.init({ a: tf.zeros([2]) });
    expect(() => opt.update({ ...state, slots: other.slots }, { a: tf.zeros([2]), b: tf.zeros([3]) }, ctx)).toThrow(/lstm0\.h must be a \[2, 5\] tensor/);
    // Gradients may come in another key order: the state's parameters decide the layout.
    const next = opt.update(state, { b: tf.ones([3]), a: tf.ones([2]) }, ctx);
    expect(Object.keys(next.params)).toEqual(['a', 'b']);
    mo.dispose();
  });
});
