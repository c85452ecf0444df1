import * as tf from '@tensorflow/tfjs-core';
import { ComponentRegistry, Rng, UserError, createContainer, disposeTree, type NamedTensors, type Optimizer, type OptimizerState, type TensorTree } from '@l2l/core';
import {
  adagradOptimizer,
  adamOptimizer,
  baselinesContribution,
  baselinesModule,
  momentumOptimizer,
  nagOptimizer,
  rmspropOptimizer,
  sgdOptimizer,
} from './index';
import { checkOptimizer } from '@l2l/core/testing';

/** `disposeTree(old, next)` for states (an `OptimizerState` is not typed as a `TensorTree`). */
function release(old: OptimizerState, next?: OptimizerState): void {
  const tree = (s: OptimizerState): TensorTree => ({ params: s.params, slots: s.slots });
  disposeTree(tree(old), next ? tree(next) : undefined);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/**
 * A fixed problem with two parameters of different shapes: a 5×5 least-squares term in `w` [5, 3] and a
 * weighted quadratic in `v` [4], plus a small coupling so each gradient depends on both.
 */
function makeProblem() {
  const rng = new Rng(1234);
  const a = tf.tensor2d(rng.normals(25), [5, 5]);
  const b = tf.tensor2d(rng.normals(15), [5, 3]);
  const c = tf.tensor1d([0.5, 1, 2, 4]);
  const d = tf.tensor1d(rng.normals(4));
  const init = { w: tf.tensor2d(rng.normals(15), [5, 3]), v: tf.tensor1d(rng.normals(4)) };
  const loss = (w: tf.Tensor, v: tf.Tensor): tf.Scalar =>
    tf.tidy(() => {
      const ls = tf.div(tf.sum(tf.square(tf.sub(tf.matMul(a, w as tf.Tensor2D), b))), 5);
      const quad = tf.sum(tf.mul(c, tf.square(tf.sub(v, d))));
      const coupling = tf.mul(0.1, tf.mul(tf.sum(w), tf.sum(v)));
      return tf.add(tf.add(ls, quad), coupling) as tf.Scalar;
    });
  const gradFn = tf.grads((w: tf.Tensor, v: tf.Tensor) => loss(w, v));
  const grads = (params: NamedTensors): NamedTensors => {
    const [gw, gv] = gradFn([params.w!, params.v!]);
    return { w: gw!, v: gv! };
  };
  const dispose = () => tf.dispose([a, b, c, d, init.w, init.v]);
  return { init, loss, grads, dispose };
}

interface ParityCase {
  label: string;
  functional: () => Optimizer;
  reference: () => tf.Optimizer;
}

const EPS = 1e-7;
const parityCases: ParityCase[] = [
  { label: 'sgd', functional: () => sgdOptimizer({ learningRate: 0.02 }), reference: () => tf.train.sgd(0.02) },
  {
    label: 'momentum',
    functional: () => momentumOptimizer({ learningRate: 0.01, momentum: 0.9 }),
    reference: () => tf.train.momentum(0.01, 0.9),
  },
  {
    label: 'nag',
    functional: () => nagOptimizer({ learningRate: 0.01, momentum: 0.9 }),
    reference: () => tf.train.momentum(0.01, 0.9, true),
  },
  {
    label: 'rmsprop',
    functional: () => rmspropOptimizer({ learningRate: 0.01 }),
    reference: () => tf.train.rmsprop(0.01, 0.9, 0, EPS, false),
  },
  {
    label: 'rmsprop with momentum',
    functional: () => rmspropOptimizer({ learningRate: 0.005, decay: 0.8, momentum: 0.5 }),
    reference: () => tf.train.rmsprop(0.005, 0.8, 0.5, EPS, false),
  },
  {
    // tfjs computes √(s − (ḡ² + ε)); ours √(s − ḡ² + ε) (TensorFlow/Keras). Passing −ε to tfjs makes them equal.
    label: 'rmsprop centered with momentum',
    functional: () => rmspropOptimizer({ learningRate: 0.005, momentum: 0.5, centered: true }),
    reference: () => tf.train.rmsprop(0.005, 0.9, 0.5, -EPS, true),
  },
  { label: 'adam', functional: () => adamOptimizer({ learningRate: 0.01 }), reference: () => tf.train.adam(0.01, 0.9, 0.999) },
  {
    label: 'adam (non-default betas)',
    functional: () => adamOptimizer({ learningRate: 0.02, beta1: 0.5, beta2: 0.9, epsilon: 1e-4 }),
    reference: () => tf.train.adam(0.02, 0.5, 0.9, 1e-4),
  },
  { label: 'adagrad', functional: () => adagradOptimizer({ learningRate: 0.05 }), reference: () => tf.train.adagrad(0.05) },
  {
    label: 'adagrad (initial accumulator 1)',
    functional: () => adagradOptimizer({ learningRate: 0.05, initialAccumulatorValue: 1 }),
    reference: () => tf.train.adagrad(0.05, 1),
  },
];

/** Largest |a − b| / (|b| + 1e-3) over all entries. */
function maxRelError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / (Math.abs(y[i]!) + 1e-3));
  return worst;
}

let variableCounter = 0;

describe.each(parityCases)('$label matches tf.train over 20 steps', ({ functional, reference }) => {
  test('parameter trajectories agree to float32 tolerance', () => {
    const problem = makeProblem();
    const opt = functional();
    const ref = reference();
    const tag = `baselines-parity-${variableCounter++}`;
    const vw = tf.variable(problem.init.w, true, `${tag}/w`);
    const vv = tf.variable(problem.init.v, true, `${tag}/v`);
    let state = opt.init(problem.init);
    for (let step = 0; step < 20; step++) {
      const g = problem.grads(state.params);
      const next = opt.update(state, g, { step, training: false });
      release(state, next);
      tf.dispose(Object.values(g));
      state = next;

      const refGrads = problem.grads({ w: vw, v: vv });
      ref.applyGradients({ [vw.name]: refGrads.w!, [vv.name]: refGrads.v! });
      tf.dispose(Object.values(refGrads));

      expect(state.step).toBe(step + 1);
      expect(maxRelError(state.params.w!, vw)).toBeLessThan(1e-5);
      expect(maxRelError(state.params.v!, vv)).toBeLessThan(1e-5);
    }
    // The run must actually have moved the parameters (so the comparison means something).
    const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(state.params.w!, problem.init.w))).dataSync()[0]!);
    expect(moved).toBeGreaterThan(1e-3);
    release(state);
    ref.dispose();
    tf.dispose([vw, vv]);
    problem.dispose();
  });
});

const allBaselines: Array<[string, () => Optimizer]> = [
  ['sgd', () => sgdOptimizer()],
  ['momentum', () => momentumOptimizer()],
  ['nag', () => nagOptimizer()],
  ['rmsprop', () => rmspropOptimizer({ momentum: 0.9, centered: true })],
  ['adam', () => adamOptimizer()],
  ['adagrad', () => adagradOptimizer()],
];

describe.each(allBaselines)('%s state handling', (_type, make) => {
  test('no tensor leaks over repeated updates', () => {
    const problem = makeProblem();
    const opt = make();
    const before = tf.memory().numTensors;
    let state: OptimizerState = opt.init(problem.init);
    const counts: number[] = [];
    for (let step = 0; step < 10; step++) {
      const g = problem.grads(state.params);
      const next = opt.update(state, g, { step, training: true });
      release(state, next);
      tf.dispose(Object.values(g));
      state = next;
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    release(state);
    expect(tf.memory().numTensors).toBe(before);
    problem.dispose();
  });

  test('init copies the parameters and update changes none of its inputs', () => {
    const problem = makeProblem();
    const opt = make();
    const initW = problem.init.w.arraySync();
    const state = opt.init(problem.init);
    expect(state.step).toBe(0);
    expect(state.params.w).not.toBe(problem.init.w);
    const g = problem.grads(state.params);
    const snapshot = (t: tf.Tensor) => Array.from(t.dataSync());
    const oldParams = { w: snapshot(state.params.w!), v: snapshot(state.params.v!) };
    const oldGrads = { w: snapshot(g.w!), v: snapshot(g.v!) };
    const slotTensors = Object.values(state.slots as Record<string, Record<string, tf.Tensor>>).flatMap((s) => Object.values(s));
    const slotValues = slotTensors.map(snapshot);

    const next = opt.update(state, g, { step: 0, training: false });
    expect(next.step).toBe(1);
    expect(snapshot(state.params.w!)).toEqual(oldParams.w);
    expect(snapshot(state.params.v!)).toEqual(oldParams.v);
    expect(snapshot(g.w!)).toEqual(oldGrads.w);
    expect(snapshot(g.v!)).toEqual(oldGrads.v);
    slotTensors.forEach((t, i) => {
      expect(t.isDisposed).toBe(false);
      expect(snapshot(t)).toEqual(slotValues[i]);
    });
    // The new parameters are new tensors; the caller's initial tensors are untouched.
    expect(next.params.w).not.toBe(state.params.w);
    expect(problem.init.w.arraySync()).toEqual(initW);

    release(state, next);
    release(next);
    tf.dispose(Object.values(g));
    expect(problem.init.w.isDisposed).toBe(false);
    problem.dispose();
  });

  test('a missing or misshapen gradient is reported', () => {
    const opt = make();
    const params = { w: tf.ones([2, 2]), v: tf.ones([3]) };
    const state = opt.init(params);
    expect(() => opt.update(state, { w: tf.ones([2, 2]) }, { step: 0, training: false })).toThrow(/no gradient for parameter "v"/);
    expect(() => opt.update(state, { w: tf.ones([4]), v: tf.ones([3]) }, { step: 0, training: false })).toThrow(/shape/);
    release(state);
    tf.dispose(Object.values(params));
  });
});

const withRate: Array<[string, (lr: number) => Optimizer]> = [
  ['sgd', (lr) => sgdOptimizer({ learningRate: lr })],
  ['momentum', (lr) => momentumOptimizer({ learningRate: lr })],
  ['nag', (lr) => nagOptimizer({ learningRate: lr })],
  ['rmsprop', (lr) => rmspropOptimizer({ learningRate: lr, momentum: 0.9, centered: true })],
  ['adam', (lr) => adamOptimizer({ learningRate: lr })],
  ['adagrad', (lr) => adagradOptimizer({ learningRate: lr })],
];

describe.each(withRate)('%s honours StepContext.learningRateScale (a schedule of the outer loop)', (_type, make) => {
  const run = (opt: Optimizer, scales: Array<number | undefined>) => {
    const problem = makeProblem();
    let state = opt.init(problem.init);
    for (const [step, learningRateScale] of scales.entries()) {
      const g = problem.grads(state.params);
      const next = opt.update(state, g, { step, training: false, ...(learningRateScale !== undefined && { learningRateScale }) });
      release(state, next);
      tf.dispose(Object.values(g));
      state = next;
    }
    const out = { w: Array.from(state.params.w!.dataSync()), v: Array.from(state.params.v!.dataSync()) };
    release(state);
    problem.dispose();
    return out;
  };

  test('a factor of ½ takes the steps of half the learning rate; 0 stands still; NaN is refused', () => {
    const before = tf.memory().numTensors;
    expect(run(make(0.02), [0.5, 0.5, 0.5, 0.5])).toEqual(run(make(0.01), [undefined, undefined, undefined, undefined]));
    const still = run(make(0.02), [0, 0]);
    const problem = makeProblem();
    expect(still).toEqual({ w: Array.from(problem.init.w.dataSync()), v: Array.from(problem.init.v.dataSync()) });
    problem.dispose();
    expect(run(make(0.02), [1, 0.5])).not.toEqual(run(make(0.02), [1, 1]));
    const p = makeProblem();
    const opt = make(0.02);
    const state = opt.init(p.init);
    const g = p.grads(state.params);
    expect(() => opt.update(state, g, { step: 0, training: false, learningRateScale: NaN })).toThrow(/learningRateScale must be finite and ≥ 0, got NaN/);
    release(state);
    tf.dispose(Object.values(g));
    p.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('hand-derived single steps', () => {
  const theta = [1, -2, 0.5];
  const grad = [0.3, -4, 0];
  function oneStep(opt: Optimizer): number[] {
    const state = opt.init({ x: tf.tensor1d(theta) });
    const g = { x: tf.tensor1d(grad) };
    const next = opt.update(state, g, { step: 0, training: false });
    const out = Array.from(next.params.x!.dataSync());
    release(state, next);
    release(next);
    tf.dispose(g.x);
    return out;
  }
  const close = (actual: number[], expected: number[], digits = 6) =>
    expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
  // Adam rounds its bias corrections 1 − βᵗ to float32 as tfjs does; for β₂ = 0.999 that is ~1e-5 relative,
  // so Adam's hand checks allow 5e-6 where the others allow 5e-7.

  test('sgd: θ − lr·g', () => {
    close(oneStep(sgdOptimizer({ learningRate: 0.1 })), [1 - 0.03, -2 + 0.4, 0.5]);
  });

  test('adam: first step is θ − lr·g/(|g| + ε) after bias correction', () => {
    const lr = 0.1;
    const expected = theta.map((t, i) => t - (lr * grad[i]!) / (Math.abs(grad[i]!) + 1e-7));
    close(oneStep(adamOptimizer({ learningRate: lr })), expected, 5);
  });

  test('adam: second step by hand', () => {
    const [lr, b1, b2, eps] = [0.1, 0.9, 0.999, 1e-7];
    const g1 = 2;
    const g2 = -1;
    const opt = adamOptimizer({ learningRate: lr });
    let state = opt.init({ x: tf.scalar(0) });
    for (const [step, g] of [g1, g2].entries()) {
      const gt = tf.scalar(g);
      const next = opt.update(state, { x: gt }, { step, training: false });
      release(state, next);
      gt.dispose();
      state = next;
    }
    const m1 = (1 - b1) * g1;
    const v1 = (1 - b2) * g1 * g1;
    const x1 = 0 - (lr * (m1 / (1 - b1))) / (Math.sqrt(v1 / (1 - b2)) + eps);
    const m2 = b1 * m1 + (1 - b1) * g2;
    const v2 = b2 * v1 + (1 - b2) * g2 * g2;
    const x2 = x1 - (lr * (m2 / (1 - b1 ** 2))) / (Math.sqrt(v2 / (1 - b2 ** 2)) + eps);
    expect(state.params.x!.dataSync()[0]).toBeCloseTo(x2, 5);
    const slots = state.slots as Record<string, Record<string, tf.Tensor>>;
    expect(slots.x!.m!.dataSync()[0]).toBeCloseTo(m2, 6);
    expect(slots.x!.v!.dataSync()[0]).toBeCloseTo(v2, 6);
    release(state);
  });

  test('adagrad: θ − lr·g/√(s₀ + g² + ε)', () => {
    const expected = theta.map((t, i) => t - (0.1 * grad[i]!) / Math.sqrt(0.1 + grad[i]! ** 2 + 1e-7));
    close(oneStep(adagradOptimizer({ learningRate: 0.1 })), expected);
  });

  test('momentum and nag: two steps by hand', () => {
    const run = (opt: Optimizer) => {
      let state = opt.init({ x: tf.scalar(1) });
      for (const [step, g] of [1, 3].entries()) {
        const gt = tf.scalar(g);
        const next = opt.update(state, { x: gt }, { step, training: false });
        release(state, next);
        gt.dispose();
        state = next;
      }
      const out = state.params.x!.dataSync()[0]!;
      release(state);
      return out;
    };
    // a1 = 1, a2 = 0.5·1 + 3 = 3.5
    expect(run(momentumOptimizer({ learningRate: 0.1, momentum: 0.5 }))).toBeCloseTo(1 - 0.1 * 1 - 0.1 * 3.5, 6);
    // steps: g + μ·a: 1 + 0.5 = 1.5, then 3 + 0.5·3.5 = 4.75
    expect(run(nagOptimizer({ learningRate: 0.1, momentum: 0.5 }))).toBeCloseTo(1 - 0.1 * 1.5 - 0.1 * 4.75, 6);
  });
});

describe('registration and options', () => {
  const registry = new ComponentRegistry([baselinesContribution]);

  test('the module registers all six baselines, each with a positive default learning rate', () => {
    const fromContainer = createContainer(baselinesModule).get(ComponentRegistry);
    const types = fromContainer.list('optimizer').map((c) => c.type);
    expect(types).toEqual(['adagrad', 'adam', 'momentum', 'nag', 'rmsprop', 'sgd']);
    for (const type of types) {
      const options = registry.resolveOptions('optimizer', { type });
      expect(typeof options.learningRate).toBe('number');
      expect(options.learningRate as number).toBeGreaterThan(0);
    }
  });

  test('defaults follow tf.train where tfjs has them', () => {
    expect(registry.resolveOptions('optimizer', { type: 'adam' })).toEqual({ learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    expect(registry.resolveOptions('optimizer', { type: 'rmsprop' })).toEqual({
      learningRate: 0.001,
      decay: 0.9,
      momentum: 0,
      epsilon: 1e-7,
      centered: false,
    });
    expect(registry.resolveOptions('optimizer', { type: 'adagrad' })).toMatchObject({ initialAccumulatorValue: 0.1 });
    expect(registry.resolveOptions('optimizer', { type: 'momentum' })).toEqual({ learningRate: 0.01, momentum: 0.9 });
  });

  test('bad options are rejected with a UserError naming the field', () => {
    const bad = (options: Record<string, unknown>, type = 'adam') => () =>
      registry.resolveOptions('optimizer', { type, options: options as never });
    expect(bad({ learningRate: 'x' })).toThrow(UserError);
    expect(bad({ learningRate: 'x' })).toThrow(/learningRate must be a number > 0, got "x"/);
    expect(bad({ learningRate: 0 }, 'sgd')).toThrow(/learningRate/);
    expect(bad({ beta1: 1 })).toThrow(/beta1/);
    expect(bad({ centered: 'yes' }, 'rmsprop')).toThrow(/centered/);
    expect(bad({ lr: 0.1 }, 'momentum')).toThrow(/unknown field "lr"/);
    // Programmatic construction validates too.
    expect(() => adamOptimizer({ learningRate: -1 })).toThrow(UserError);
  });

  test.each(baselinesContribution.components.map((c) => [c.type, c] as const))('%s honours the optimizer contract checks', async (_type, def) => {
    await checkOptimizer(def);
  });

  test('registry-built optimizers are named by type and learning rate', () => {
    const ctx = { seed: 0, baseDir: '.' };
    expect(registry.create('optimizer', { type: 'adam' }, ctx).name).toBe('adam(lr=0.001)');
    expect(registry.create('optimizer', { type: 'sgd', options: { learningRate: 0.3 } }, ctx).name).toBe('sgd(lr=0.3)');
    expect(registry.create('optimizer', { type: 'momentum', options: { momentum: 0.5 } }, ctx).name).toBe('momentum(lr=0.01, momentum=0.5)');
    expect(rmspropOptimizer({ centered: true }).name).toBe('rmsprop(lr=0.001, centered=true)');
  });
});
