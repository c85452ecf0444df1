import * as tf from '@tensorflow/tfjs-core';
import { ComponentRegistry, UserError, createContainer, randomScaling, useBackend, type Task, type TaskConfig } from '@l2l/core';
import { checkTaskFamily } from '@l2l/core/testing';
import { optimizeesModule } from '../optimizees-module';
import { createQuadraticFamily, quadratic, quadraticTaskSeed, QuadraticTask } from './quadratic';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** W [b][i][j], y [b][i], x [b][j] as nested arrays. */
function arrays(task: QuadraticTask, x: tf.Tensor) {
  return {
    w: task.w.arraySync() as number[][][],
    y: task.y.arraySync() as number[][],
    x: x.arraySync() as number[][],
  };
}

/** Residuals r_b = W_b x_b − y_b in float64. */
function residuals(w: number[][][], y: number[][], x: number[][]): number[][] {
  return w.map((wb, b) => wb.map((row, i) => row.reduce((s, wij, j) => s + wij * x[b]![j]!, 0) - y[b]![i]!));
}

function lossAndGrad(task: QuadraticTask, x: tf.Tensor): { loss: number; grad: number[][] } {
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((p: tf.Tensor) => task.loss({ x: p }))(x);
    return { loss: value.dataSync()[0]!, grad: grad.arraySync() as number[][] };
  });
}

describe('quadratic loss and gradient', () => {
  const family = createQuadraticFamily({ dims: 2, batch: 3 });
  let task: QuadraticTask;
  let x: tf.Tensor;
  beforeAll(() => {
    task = family.build(family.sample(7, 'train'));
    x = task.initParams(11).x!;
  });
  afterAll(() => {
    x.dispose();
    task.dispose();
  });

  test('params are one tensor "x" [batch, dims]; batch() is empty', () => {
    expect(x.shape).toEqual([3, 2]);
    expect(x.dtype).toBe('float32');
    expect(task.w.shape).toEqual([3, 2, 2]);
    expect(task.y.shape).toEqual([3, 2]);
    expect(task.batch()).toEqual({});
  });

  test('loss is the mean over the batch of ‖W_b θ_b − y_b‖² (hand computation, dims 2)', () => {
    const { w, y, x: xs } = arrays(task, x);
    let total = 0;
    for (let b = 0; b < 3; b++) {
      const [[w00, w01], [w10, w11]] = w[b] as [[number, number], [number, number]];
      const [x0, x1] = xs[b] as [number, number];
      const [y0, y1] = y[b] as [number, number];
      total += (w00 * x0 + w01 * x1 - y0) ** 2 + (w10 * x0 + w11 * x1 - y1) ** 2;
    }
    const { loss } = lossAndGrad(task, x);
    expect(loss).toBeCloseTo(total / 3, 4);
    expect(Math.abs(loss - total / 3) / (total / 3)).toBeLessThan(1e-5);
  });

  test('loss is zero at θ_b = W_b⁻¹ y_b', () => {
    const { w, y } = arrays(task, x);
    const solution = w.map((wb, b) => {
      const [[a, c], [d, e]] = wb as [[number, number], [number, number]];
      const det = a * e - c * d;
      const [y0, y1] = y[b] as [number, number];
      return [(e * y0 - c * y1) / det, (a * y1 - d * y0) / det];
    });
    const xStar = tf.tensor2d(solution);
    const { loss } = lossAndGrad(task, xStar);
    expect(loss).toBeLessThan(1e-8);
    xStar.dispose();
  });

  test('gradient is 2Wᵀ(Wθ − y)/batch', () => {
    const { w, y, x: xs } = arrays(task, x);
    const r = residuals(w, y, xs);
    const expected = w.map((wb, b) => [0, 1].map((j) => (2 / 3) * wb.reduce((s, row, i) => s + row[j]! * r[b]![i]!, 0)));
    const { grad } = lossAndGrad(task, x);
    grad.forEach((row, b) => row.forEach((g, j) => expect(g).toBeCloseTo(expected[b]![j]!, 4)));
  });

  test('second derivatives are exact: the Hessian-vector product is 2WᵀWv/batch', () => {
    const v = tf.tensor2d([
      [1, -2],
      [0.5, 3],
      [-1, 0.25],
    ]);
    const hv = tf.tidy(() => {
      const g = tf.grad((p: tf.Tensor) => task.loss({ x: p }));
      return tf.grad((p: tf.Tensor) => tf.sum(tf.mul(g(p), v)))(x).arraySync() as number[][];
    });
    const { w } = arrays(task, x);
    const vs = v.arraySync();
    const wv = w.map((wb, b) => wb.map((row) => row.reduce((s, wij, j) => s + wij * vs[b]![j]!, 0)));
    const expected = w.map((wb, b) => [0, 1].map((j) => (2 / 3) * wb.reduce((s, row, i) => s + row[j]! * wv[b]![i]!, 0)));
    hv.forEach((row, b) => row.forEach((h, j) => expect(h).toBeCloseTo(expected[b]![j]!, 4)));
    v.dispose();
  });

  test('the loss checks its parameter', () => {
    const bad = tf.zeros([2, 2]);
    expect(() => task.loss({ x: bad })).toThrow(/must have shape \[3, 2\]/);
    expect(() => task.loss({ theta: bad })).toThrow(/needs a parameter "x"/);
    bad.dispose();
  });

  test('the gradient at default size matches the analytic one', () => {
    const big = createQuadraticFamily();
    const t = big.build(big.sample(1, 'test'));
    const p = t.initParams(2).x!;
    const { w, y, x: xs } = arrays(t, p);
    const r = residuals(w, y, xs);
    const { loss, grad } = lossAndGrad(t, p);
    expect(p.shape).toEqual([128, 10]);
    const lossRef = r.reduce((s, rb) => s + rb.reduce((a, v) => a + v * v, 0), 0) / 128;
    expect(Math.abs(loss - lossRef) / lossRef).toBeLessThan(1e-5);
    let worst = 0;
    for (let b = 0; b < 128; b++) {
      for (let j = 0; j < 10; j++) {
        const g = (2 / 128) * w[b]!.reduce((s, row, i) => s + row[j]! * r[b]![i]!, 0);
        worst = Math.max(worst, Math.abs(grad[b]![j]! - g) / (Math.abs(g) + 1e-3));
      }
    }
    expect(worst).toBeLessThan(1e-4);
    p.dispose();
    t.dispose();
  });
});

describe('quadratic sampling and determinism', () => {
  const family = createQuadraticFamily({ dims: 4, batch: 5 });

  test('sample is deterministic plain JSON; train seeds are even, validation seeds 1 and test seeds 3 mod 4', () => {
    for (let seed = 0; seed < 50; seed++) {
      const train = family.sample(seed, 'train');
      const validation = family.sample(seed, 'validation');
      const test = family.sample(seed, 'test');
      expect(train).toEqual({ family: 'quadratic', split: 'train', seed: quadraticTaskSeed(seed, 'train') });
      expect(validation).toEqual({ family: 'quadratic', split: 'validation', seed: quadraticTaskSeed(seed, 'validation') });
      expect(JSON.parse(JSON.stringify(test))).toEqual(test);
      expect(family.sample(seed, 'train')).toEqual(train);
      expect(train.seed % 2).toBe(0);
      expect(validation.seed % 4).toBe(1);
      expect(test.seed % 4).toBe(3);
      for (const c of [train, validation, test]) expect(Number.isInteger(c.seed) && c.seed >= 0 && c.seed < 2 ** 32).toBe(true);
    }
    const seeds = new Set(Array.from({ length: 200 }, (_, s) => family.sample(s, 'train').seed));
    expect(seeds.size).toBe(200);
  });

  test('the three splits are disjoint: no seed (hence no W, y) is drawn by two splits', () => {
    const bySplit = (['train', 'validation', 'test'] as const).map((split) => new Set(Array.from({ length: 2000 }, (_, s) => family.sample(s, split).seed)));
    for (let i = 0; i < 3; i++) for (let j = i + 1; j < 3; j++) for (const s of bySplit[i]!) expect(bySplit[j]!.has(s)).toBe(false);
    const v = family.build(family.sample(3, 'validation'));
    const t = family.build(family.sample(3, 'test'));
    expect(v.w.arraySync()).not.toEqual(t.w.arraySync());
    [v, t].forEach((x) => x.dispose());
  });

  test('fullLoss is the loss (no minibatches), leaving no tensor behind', () => {
    const task = family.build(family.sample(0, 'test'));
    const p = task.initParams(1);
    const before = tf.memory().numTensors;
    const l = task.loss(p);
    expect(task.fullLoss(p)).toBe(l.dataSync()[0]);
    l.dispose();
    expect(tf.memory().numTensors).toBe(before);
    p.x!.dispose();
    task.dispose();
  });

  test('the same config builds the same W and y; train and test tasks differ', () => {
    const config = family.sample(3, 'train');
    const a = family.build(config);
    const b = family.build(structuredClone(config));
    const c = family.build(family.sample(3, 'test'));
    const d = family.build(family.sample(4, 'train'));
    expect(a.w.arraySync()).toEqual(b.w.arraySync());
    expect(a.y.arraySync()).toEqual(b.y.arraySync());
    expect(a.w.arraySync()).not.toEqual(c.w.arraySync());
    expect(a.y.arraySync()).not.toEqual(c.y.arraySync());
    expect(a.w.arraySync()).not.toEqual(d.w.arraySync());
    expect(a.config).toEqual(config);
    [a, b, c, d].forEach((t) => t.dispose());
  });

  test('initParams(seed) is deterministic, differs between seeds, and does not depend on the task', () => {
    const a = family.build(family.sample(0, 'train'));
    const b = family.build(family.sample(1, 'test'));
    const p1 = a.initParams(5).x!;
    const p2 = a.initParams(5).x!;
    const p3 = b.initParams(5).x!;
    const p4 = a.initParams(6).x!;
    expect(p1.arraySync()).toEqual(p2.arraySync());
    expect(p1.arraySync()).toEqual(p3.arraySync());
    expect(p1.arraySync()).not.toEqual(p4.arraySync());
    tf.dispose([p1, p2, p3, p4]);
    a.dispose();
    b.dispose();
  });

  test('W and y follow the chosen distribution; initScale sets the spread of θ₀', () => {
    const stats = (values: ArrayLike<number>) => {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < values.length; i++) {
        s += values[i]!;
        s2 += values[i]! ** 2;
      }
      const mean = s / values.length;
      return { mean, std: Math.sqrt(s2 / values.length - mean * mean), min: Math.min(...Array.from(values)), max: Math.max(...Array.from(values)) };
    };
    const normal = createQuadraticFamily({ batch: 64, initScale: 2 });
    const t = normal.build(normal.sample(0, 'train'));
    const w = stats(t.w.dataSync());
    expect(Math.abs(w.mean)).toBeLessThan(0.05);
    expect(Math.abs(w.std - 1)).toBeLessThan(0.05);
    const theta = t.initParams(1).x!;
    expect(Math.abs(stats(theta.dataSync()).std - 2)).toBeLessThan(0.2);
    theta.dispose();
    t.dispose();

    const uniform = createQuadraticFamily({ batch: 64, distribution: 'uniform', initScale: 0 });
    const u = uniform.build(uniform.sample(0, 'train'));
    const wu = stats(u.w.dataSync());
    const yu = stats(u.y.dataSync());
    expect(wu.min).toBeGreaterThanOrEqual(0);
    expect(wu.max).toBeLessThan(1);
    expect(Math.abs(wu.mean - 0.5)).toBeLessThan(0.02);
    expect(yu.min).toBeGreaterThanOrEqual(0);
    const zero = u.initParams(3).x!;
    expect(Array.from(zero.dataSync()).every((v) => v === 0)).toBe(true);
    zero.dispose();
    u.dispose();
  });

  test('build rejects configs of another family or with a bad seed or split', () => {
    const good = family.sample(0, 'train');
    expect(() => family.build({ ...good, family: 'mnist-mlp' })).toThrow(UserError);
    expect(() => family.build({ ...good, seed: 1.5 })).toThrow(/seed must be an integer/);
    expect(() => family.build({ ...good, seed: -1 })).toThrow(/seed must be an integer/);
    expect(() => family.build({ ...good, split: 'valid' } as unknown as TaskConfig)).toThrow(/split/);
    expect(() => family.sample(0, 'dev' as never)).toThrow(/split/);
  });
});

describe('quadratic resources', () => {
  test('repeated loss and gradient calls leak nothing; dispose frees W and y', () => {
    const family = createQuadraticFamily();
    const before = tf.memory().numTensors;
    const task = family.build(family.sample(0, 'train'));
    const x = task.initParams(0).x!;
    const vg = tf.valueAndGrad((p: tf.Tensor) => task.loss({ x: p }));
    const once = () =>
      tf.tidy(() => {
        const { value, grad } = vg(x);
        value.dataSync();
        grad.dataSync();
      });
    once();
    const steady = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) once();
    expect(tf.memory().numTensors).toBe(steady);
    x.dispose();
    task.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('honours the task-family contract checks', async () => {
    await checkTaskFamily(quadratic, { options: { dims: 3, batch: 4 } });
    await checkTaskFamily(quadratic);
  });
});

describe('quadratic options', () => {
  const registry = createContainer(optimizeesModule).get(ComponentRegistry);

  test('is registered as optimizee "quadratic" with the documented defaults', () => {
    expect(registry.has('optimizee', 'quadratic')).toBe(true);
    expect(registry.resolveOptions('optimizee', { type: 'quadratic' })).toEqual({ dims: 10, batch: 128, initScale: 1, distribution: 'normal' });
    const fam = registry.create('optimizee', { type: 'quadratic', options: { dims: 3, batch: 1 } }, { seed: 0, baseDir: '.' });
    expect(fam.type).toBe('quadratic');
    const task = fam.build(fam.sample(0, 'test'));
    const p = task.initParams(0);
    expect(p.x!.shape).toEqual([1, 3]);
    tf.dispose(Object.values(p));
    task.dispose();
  });

  test('bad options are UserErrors naming the field', () => {
    const bad = (options: Record<string, unknown>) => () => registry.resolveOptions('optimizee', { type: 'quadratic', options: options as never });
    expect(bad({ dims: 0 })).toThrow(UserError);
    expect(bad({ dims: 0 })).toThrow(/dims must be an integer ≥ 1, got 0/);
    expect(bad({ batch: 1.5 })).toThrow(/batch/);
    expect(bad({ initScale: -1 })).toThrow(/initScale/);
    expect(bad({ distribution: 'cauchy' })).toThrow(/distribution must be one of "normal", "uniform"/);
    expect(bad({ dim: 10 })).toThrow(/unknown field "dim"/);
    expect(() => createQuadraticFamily({ dims: 'ten' as never })).toThrow(UserError);
  });
});

describe('quadratic under training tricks', () => {
  test('its gradient is right when the loss sees a temporary c ⊙ θ (random scaling), on wasm', async () => {
    await useBackend('wasm');
    const family = createQuadraticFamily({ dims: 3, batch: 2 });
    const task: Task = family.build(family.sample(0, 'train'));
    const scaled = randomScaling(task, 1, 7);
    const p = scaled.initParams(0);
    // d/dθ f(c ⊙ θ) = c ⊙ ∇f(c ⊙ θ); c is recovered from the wrapped and plain initial points (θ₀/c vs θ₀).
    const plain = task.initParams(0);
    const c = tf.div(plain.x!, p.x!);
    const g = tf.grad((x: tf.Tensor) => scaled.loss({ x }, {}))(p.x!);
    const expected = tf.mul(c, tf.grad((x: tf.Tensor) => task.loss({ x }, {}))(tf.mul(c, p.x!)));
    expect(tf.max(tf.abs(tf.sub(g, expected))).dataSync()[0]).toBeLessThan(1e-4);
    tf.dispose([p.x!, plain.x!, c, g, expected]);
    task.dispose();
    await useBackend('cpu');
  });
});
