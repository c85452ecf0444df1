/*
 * Gradient checkpointing (training.checkpointEvery) on the real LSTM optimizer: its state (h, c of every layer)
 * carries the meta-gradient across segment boundaries through the fused cell and the row-slice kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { disposeCarry, disposeTree, metaGradient, Rng, startRun, useBackend, type MetaGradient, type Task, type TensorTree } from '@l2l/core';
import { expectAllClose } from '../common/spec-helpers';
import { LstmMetaOptimizer } from './lstm';

/** f(θ) = Σ κ (θ − t)² over two tensors, fixed κ > 0 and t. */
function quadraticTask(): Task {
  const rng = new Rng(4);
  const shapes: Record<string, number[]> = { a: [3, 4], b: [5] };
  const kappa = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(rng.uniforms(s.reduce((x, y) => x * y, 1), 0.2, 2), s)]));
  const target = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(rng.normals(s.reduce((x, y) => x * y, 1)), s)]));
  return {
    config: { family: 'test-quadratic', split: 'train', seed: 0 },
    initParams: (seed) => {
      const r = new Rng(seed);
      return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(r.normals(s.reduce((x, y) => x * y, 1)), s)]));
    },
    batch: () => ({}),
    loss: (p) => tf.tidy(() => tf.addN(Object.keys(shapes).map((k) => tf.sum(tf.mul(kappa[k]!, tf.square(tf.sub(p[k]!, target[k]!)))))) as tf.Scalar),
    dispose: () => tf.dispose([...Object.values(kappa), ...Object.values(target)]),
  };
}

const flat = (t: tf.Tensor) => Array.from(t.dataSync());

describe.each(['wasm', 'cpu'] as const)('the lstm optimizer\'s checkpointed meta-gradient on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    ['uniform', false, 2],
    ['uniform', false, 4],
    ['last', false, 3],
    ['uniform', true, 3],
  ] as const)('equals the plain unroll\'s (lossWeights %s, secondDerivatives %s, segments of %i of 7 steps)', (lossWeights, secondDerivatives, every) => {
    const mo = new LstmMetaOptimizer({ hidden: 6 }, 2);
    const optimizer = mo.optimizer();
    const task = quadraticTask();
    const carry = startRun(task, optimizer, task.initParams(1), 0);
    const options = { length: 7, lossWeights, secondDerivatives, batchSeed: 0, training: true };
    const before = tf.memory().numTensors;
    const plain = metaGradient(task, optimizer, carry, mo.variables, options);
    const ck = metaGradient(task, optimizer, carry, mo.variables, { ...options, checkpointEvery: every });
    expectAllClose(flat(ck.metaLoss), flat(plain.metaLoss), 1e-5 * Math.abs(flat(plain.metaLoss)[0]!));
    expect(Object.keys(ck.grads).sort()).toEqual(Object.keys(mo.variables).sort());
    for (const name of Object.keys(mo.variables)) {
      const g = flat(plain.grads[name]!);
      const scale = Math.max(...g.map(Math.abs));
      expect(scale).toBeGreaterThan(1e-4); // every weight gets a real meta-gradient
      expectAllClose(flat(ck.grads[name]!), g, 1e-4 * scale);
    }
    const slots = (r: MetaGradient) =>
      tf.tidy(() => flat(tf.concat(Object.values(r.next.state.slots as Record<string, { h: tf.Tensor; c: tf.Tensor }>).flatMap((l) => [l.h, l.c]), 0)));
    expectAllClose(slots(ck), slots(plain), 1e-6);
    for (const r of [plain, ck]) {
      tf.dispose([r.metaLoss, r.losses, ...Object.values(r.grads)]);
      disposeTree(r.next as unknown as TensorTree, carry as unknown as TensorTree);
    }
    expect(tf.memory().numTensors).toBe(before);
    disposeCarry(carry);
    task.dispose();
    mo.dispose();
  });
});
