import * as tf from '@tensorflow/tfjs-core';
import { ComponentRegistry, createContainer, disposeTree, Rng, useBackend, type NamedTensors, type TensorTree } from '@l2l/core';
import { checkMetaOptimizer } from '@l2l/core/testing';
import { checkMetaGradient, expectAllClose, flatValues, leakCounts, randomNamed, values, expectOptionErrors } from '../common/spec-helpers';
import { metaOptimizersModule } from '../meta-optimizers-module';
import { multiscaleAdamComponent } from './component';
import { MultiscaleAdamMetaOptimizer, type MultiscaleAdamSlots } from './multiscale-adam';
import { DEFAULT_MULTISCALE_BETAS, type MultiscaleAdamOptions } from './options';

const ctx = { step: 0, training: true };

function registry(): ComponentRegistry {
  return createContainer(metaOptimizersModule).get(ComponentRegistry);
}

/** Multiscale Adam in plain float64 JavaScript, one coordinate at a time. */
class ReferenceMultiscaleAdam {
  private readonly m: number[][]; // [coordinate][pair]
  private readonly v: number[][];
  private readonly h: number[][];
  private readonly c: number[][];
  private t = 0;

  constructor(
    private readonly o: MultiscaleAdamOptions,
    private readonly w: Record<string, number[][]>,
    n: number,
  ) {
    const k = o.betas.length;
    this.m = Array.from({ length: n }, () => new Array(k).fill(0));
    this.v = Array.from({ length: n }, () => new Array(k).fill(0));
    this.h = Array.from({ length: n }, () => new Array(o.hidden).fill(0));
    this.c = Array.from({ length: n }, () => new Array(o.hidden).fill(0));
  }

  step(g: number[]): number[] {
    const { betas, epsilon, combiner, hidden: H } = this.o;
    const dot = (row: number[], z: number[]) => row.reduce((s, wv, j) => s + wv * z[j]!, 0);
    const softmax = (l: number[]) => {
      const e = l.map((x) => Math.exp(x - Math.max(...l)));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / s);
    };
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const lr = this.o.learnLearningRate ? Math.exp(this.w['lr/log']![0]![0]!) : this.o.learningRate;
    this.t++;
    return g.map((gi, n) => {
      const u = betas.map(([b1, b2], i) => {
        this.m[n]![i] = b1 * this.m[n]![i]! + (1 - b1) * gi;
        this.v[n]![i] = b2 * this.v[n]![i]! + (1 - b2) * gi * gi;
        return this.m[n]![i]! / (1 - b1 ** this.t) / (Math.sqrt(this.v[n]![i]! / (1 - b2 ** this.t)) + epsilon);
      });
      let logits: number[];
      if (combiner === 'linear') logits = this.w['combiner/logits']![0]!;
      else if (combiner === 'mlp') {
        const hid = this.w['mlp/hidden/kernel']!.map((row) => Math.max(0, dot(row, [...u, 1])));
        logits = this.w['mlp/output/kernel']!.map((row) => dot(row, [...hid, 1]));
      } else {
        const a = this.w['lstm/kernel']!.map((row) => dot(row, [...u, ...this.h[n]!, 1]));
        const c2 = Array.from({ length: H }, (_, j) => sig(a[H + j]!) * this.c[n]![j]! + sig(a[j]!) * Math.tanh(a[2 * H + j]!));
        this.h[n] = c2.map((cj, j) => sig(a[3 * H + j]!) * Math.tanh(cj));
        this.c[n] = c2;
        logits = this.w['output/kernel']!.map((row) => dot(row, [...this.h[n]!, 1]));
      }
      const w = softmax(logits);
      return -lr * w.reduce((s, wi, i) => s + wi * u[i]!, 0);
    });
  }
}

const combiners = ['linear', 'mlp', 'rnn'] as const;

describe.each(['wasm', 'cpu'] as const)('multiscale-adam meta-optimizer on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    [{ combiner: 'linear' as const }],
    [{ combiner: 'linear' as const, betas: [[0.9, 0.999]] as Array<[number, number]>, learnLearningRate: false, learningRate: 0.3 }],
    [{ combiner: 'mlp' as const, hidden: 4, initScale: 5 }],
    [{ combiner: 'rnn' as const, hidden: 3, initScale: 5, betas: [[0.5, 0.9], [0.9, 0.99], [0, 0]] as Array<[number, number]> }],
  ])('updates parameters of any shapes as the reference does (%j)', (options) => {
    const mo = new MultiscaleAdamMetaOptimizer(options, 11);
    const opt = mo.optimizer();
    const rng = new Rng(5);
    const shapes = { w: [2, 3], b: [4], s: [] as number[] };
    const params = randomNamed(rng, shapes);
    const weights = mo.getWeights();
    const ref = new ReferenceMultiscaleAdam(mo.options, Object.fromEntries(Object.entries(weights).map(([k, t]) => [k, t.arraySync() as number[][]])), 11);
    let expected = flatValues(params);
    let state = opt.init(params);
    for (let t = 0; t < 4; t++) {
      const grads = randomNamed(rng, shapes, t === 2 ? 30 : 1);
      const delta = ref.step(flatValues(grads));
      expected = expected.map((v, i) => v + delta[i]!);
      const next = opt.update(state, grads, { step: t, training: false });
      expect(next.step).toBe(t + 1);
      for (const [name, shape] of Object.entries(shapes)) expect(next.params[name]!.shape).toEqual(shape);
      const slots = next.slots as unknown as MultiscaleAdamSlots;
      expect(slots.m.shape).toEqual([mo.options.betas.length, 11]);
      expect(slots.v.shape).toEqual([mo.options.betas.length, 11]);
      if (options.combiner === 'rnn') expect(slots.lstm!.h.shape).toEqual([3, 11]);
      else expect(slots.lstm).toBeUndefined();
      expectAllClose(flatValues(next.params), expected, 2e-5);
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      tf.dispose(Object.values(grads));
      state = next;
    }
    disposeTree(state as unknown as TensorTree);
    tf.dispose([...Object.values(params), ...Object.values(weights)]);
    mo.dispose();
  });

  it.each(combiners)('the meta-gradient through an unroll matches finite differences (%s)', (combiner) => {
    // A larger init scale so that the softmax weights differ from coordinate to coordinate.
    const mo = new MultiscaleAdamMetaOptimizer({ combiner, hidden: 3, betas: [[0.9, 0.99], [0.5, 0.6], [0.2, 0.3]], learningRate: 0.3, initScale: 4 }, 3);
    const { checked, largest } = checkMetaGradient(mo, { steps: 3, stride: combiner === 'linear' ? 1 : 3 });
    expect(checked).toBeGreaterThanOrEqual(combiner === 'linear' ? 4 : 12);
    expect(largest).toBeGreaterThan(1e-2);
    mo.dispose();
  });

  it.each(combiners)('leaks no tensor over repeated updates and meta-gradients (%s)', (combiner) => {
    const mo = new MultiscaleAdamMetaOptimizer({ combiner, hidden: 3 }, 1);
    const params = { w: tf.ones([3, 4]), b: tf.zeros([4]) };
    expect(leakCounts(mo, params)).toEqual({ updates: 0, metaGradients: 0 });
    tf.dispose(Object.values(params));
    mo.dispose();
  });
});

describe('multiscale-adam meta-optimizer: behaviour, weights, config and options', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('with all weight on one pair it is that Adam: linear logits (0, …, 40, …) give Adam(β1, β2) at the learning rate', () => {
    const mo = new MultiscaleAdamMetaOptimizer({ combiner: 'linear', learningRate: 0.05 }, 0);
    const logits = tf.tensor2d([[0, 40, 0, 0, 0, 0]]);
    const lr = tf.tensor2d([[Math.log(0.05)]]);
    mo.setWeights({ 'combiner/logits': logits, 'lr/log': lr });
    const opt = mo.optimizer();
    let x = [1, -2, 0.5];
    let state = opt.init({ x: tf.tensor1d(x) });
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    for (let t = 1; t <= 5; t++) {
      const g = x.map((xi, i) => (i + 1) * xi); // f = Σ (i+1) x² / 2
      const next = opt.update(state, { x: tf.tensor1d(g) }, ctx);
      // Adam(0.9, 0.999) by hand.
      x = x.map((xi, i) => {
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        v[i] = 0.999 * v[i]! + 0.001 * g[i]! ** 2;
        return xi - (0.05 * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.999 ** t)) + 1e-8);
      });
      expectAllClose(next.params.x!.dataSync(), x, 1e-5);
      disposeTree(state as unknown as TensorTree, next as unknown as TensorTree);
      state = next;
    }
    disposeTree(state as unknown as TensorTree);
    tf.dispose([logits, lr]);
    mo.dispose();
  });

  it('names its variables per combiner, lr/log only when the learning rate is learned', () => {
    const shapes = (options: Partial<MultiscaleAdamOptions>) => {
      const mo = new MultiscaleAdamMetaOptimizer(options, 1);
      const out = Object.fromEntries(Object.entries(mo.variables).map(([k, v]) => [k, v.shape]));
      mo.dispose();
      return out;
    };
    expect(shapes({})).toEqual({ 'combiner/logits': [1, 6], 'lr/log': [1, 1] });
    expect(shapes({ combiner: 'mlp', hidden: 5, learnLearningRate: false })).toEqual({ 'mlp/hidden/kernel': [5, 7], 'mlp/output/kernel': [6, 6] });
    expect(shapes({ combiner: 'rnn', hidden: 5, betas: [[0.9, 0.99], [0.5, 0.5]] })).toEqual({
      'lstm/kernel': [20, 2 + 5 + 1],
      'output/kernel': [2, 6],
      'lr/log': [1, 1],
    });
  });

  it.each(combiners)('weights round trip (%s): a fresh instance given getWeights() makes identical updates', (combiner) => {
    const a = new MultiscaleAdamMetaOptimizer({ combiner, hidden: 4 }, 1);
    const b = new MultiscaleAdamMetaOptimizer({ combiner, hidden: 4 }, 2);
    const rng = new Rng(9);
    const params = randomNamed(rng, { x: [5], y: [2, 2] });
    const grads = [randomNamed(rng, { x: [5], y: [2, 2] }), randomNamed(rng, { x: [5], y: [2, 2] })];
    const run = (mo: MultiscaleAdamMetaOptimizer) => {
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
    const mo = reg.create('meta-optimizer', { type: 'multiscale-adam', options: { combiner: 'mlp' } }, { seed: 5, baseDir: '.' });
    const config = mo.config();
    expect(config).toEqual({
      type: 'multiscale-adam',
      options: { betas: DEFAULT_MULTISCALE_BETAS, combiner: 'mlp', hidden: 20, learningRate: 0.01, learnLearningRate: true, epsilon: 1e-8, initScale: 1 },
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
      [{ combiner: 'attention' }, /combiner must be one of "linear", "mlp", "rnn"/],
      [{ betas: [] }, /betas must have at least 1 items/],
      [{ betas: [[0.9]] }, /betas\[0\] must have at least 2 items/],
      [{ betas: [[0.9, 1]] }, /betas\[0\]\[1\] must be a number ≥ 0 and < 1, got 1/],
      [{ learningRate: 0 }, /learningRate/],
      [{ hidden: 0 }, /hidden/],
      [{ lr: 1 }, /unknown field "lr"/],
    ];
    expectOptionErrors(reg, 'multiscale-adam', bad);
  });

  it('update checks its inputs against the state', () => {
    const mo = new MultiscaleAdamMetaOptimizer({ combiner: 'rnn', hidden: 2 }, 0);
    const opt = mo.optimizer();
    const params: NamedTensors = { a: tf.zeros([2]), b: tf.zeros([3]) };
    const state = opt.init(params);
    expect(() => opt.update(state, { a: tf.zeros([2]), b: tf.zeros([4]) }, ctx)).toThrow(/"b" has shape \[4\], expected \[3\]/);
    const other = opt.init({ a: tf.zeros([2]) });
    expect(() => opt.update({ ...state, slots: other.slots }, { a: tf.zeros([2]), b: tf.zeros([3]) }, ctx)).toThrow(/slot m must be a \[6, 5\] tensor/);
    const noLstm = { ...(state.slots as Record<string, TensorTree>), lstm: undefined };
    expect(() => opt.update({ ...state, slots: noLstm }, { a: tf.zeros([2]), b: tf.zeros([3]) }, ctx)).toThrow(/lstm\.h must be a \[2, 5\]/);
    mo.dispose();
  });

  it.each(combiners)('passes checkMetaOptimizer (%s)', async (combiner) => {
    await checkMetaOptimizer(multiscaleAdamComponent, { options: { combiner, hidden: 3 } });
  });
});
