import * as tf from '@tensorflow/tfjs-core';
import { FunctionalOuter, MetaAdam, Rng, type NamedTensors } from '@l2l/core';
import { adamOptimizer, momentumOptimizer } from './index';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** φ as two variables of different shapes, and a seeded sequence of gradients for them. */
function setup() {
  const variables = tf.tidy(() => ({ 'layer/kernel': tf.variable(tf.tensor2d([[0.5, -0.2], [0.1, 0.3]])), 'layer/bias': tf.variable(tf.tensor1d([0.05, -0.4])) }));
  const rng = new Rng(3);
  const grads = (): NamedTensors => ({ 'layer/kernel': tf.tensor2d(rng.normals(4), [2, 2]), 'layer/bias': tf.tensor1d(rng.normals(2)) });
  const values = () => Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, Array.from(v.dataSync())]));
  return { variables, grads, values, dispose: () => Object.values(variables).forEach((v) => v.dispose()) };
}

describe('a baseline as the outer optimizer (training.outerOptimizer)', () => {
  it("the adam baseline steps φ as the engine's own MetaAdam does (an independent implementation)", () => {
    const a = setup();
    const b = setup();
    const outer = new FunctionalOuter(adamOptimizer({ learningRate: 0.01, epsilon: 1e-8 }));
    const meta = new MetaAdam(0.01);
    for (let k = 0; k < 5; k++) {
      const [ga, gb] = [a.grads(), b.grads()];
      outer.apply(a.variables, ga);
      meta.apply(b.variables, gb);
      tf.dispose([...Object.values(ga), ...Object.values(gb)]);
    }
    const [va, vb] = [a.values(), b.values()];
    for (const k of Object.keys(va)) va[k]!.forEach((x, i) => expect(x).toBeCloseTo(vb[k]![i]!, 6));
    expect(outer.step).toBe(5);
    // Adam's slots under <weight>/<slot>, as MetaAdam names its moments.
    expect(Object.keys(outer.state().tensors).sort()).toEqual(Object.keys(meta.state().tensors).sort());
    outer.dispose();
    meta.dispose();
    a.dispose();
    b.dispose();
  });

  it('state() and restore() continue a momentum run exactly, and leak nothing', () => {
    const before = tf.memory().numTensors;
    const a = setup();
    const b = setup();
    const first = new FunctionalOuter(momentumOptimizer({ learningRate: 0.1, momentum: 0.9 }));
    const steps = (o: FunctionalOuter, s: ReturnType<typeof setup>, n: number) => {
      for (let k = 0; k < n; k++) {
        const g = s.grads();
        o.apply(s.variables, g);
        tf.dispose(Object.values(g));
      }
    };
    steps(first, a, 6);
    // The same run stopped after 3 steps, its state saved and restored into a new optimizer.
    const stopped = new FunctionalOuter(momentumOptimizer({ learningRate: 0.1, momentum: 0.9 }));
    steps(stopped, b, 3);
    const saved = stopped.state();
    const copies = Object.fromEntries(Object.entries(saved.tensors).map(([k, t]) => [k, tf.clone(t)]));
    stopped.dispose();
    const resumed = new FunctionalOuter(momentumOptimizer({ learningRate: 0.1, momentum: 0.9 }));
    resumed.restore(saved.step, copies, b.variables);
    tf.dispose(Object.values(copies));
    steps(resumed, b, 3);
    expect(b.values()).toEqual(a.values());
    expect(resumed.step).toBe(6);
    expect(() => resumed.restore(3, { 'layer/kernel/nothing': tf.zeros([2, 2]) }, b.variables)).toThrow(/outer optimizer "momentum\(lr=0.1\)" state: tensor "layer\/kernel\/accumulation" is missing/);
    [first, resumed].forEach((o) => o.dispose());
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before + 1); // the zeros given to the failed restore
  });
});
