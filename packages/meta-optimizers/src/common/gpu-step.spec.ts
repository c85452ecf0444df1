import * as tf from '@tensorflow/tfjs-core';
import { disposeTree, Rng, useBackend, type NamedTensors, type Optimizer, type OptimizerState } from '@l2l/core';
import { onCpuThenWebGpu } from '@l2l/core/testing';
import type { MetaOptimizer } from '@l2l/core';
import { LstmMetaOptimizer } from '../lstm';
import { RnnpropMetaOptimizer } from '../rnnprop';

// Dawn compiles each new program on Mesa's software device where there is no GPU: seconds, once.
jest.setTimeout(120_000);

/** Gradients of two tensors (22 coordinates, not a multiple of the 64-wide workgroups), with the edge values every few steps. */
function gradients(step: number, nonFinite = true): NamedTensors {
  const r = new Rng(100 + step);
  const a = Array.from(r.normals(15, 0, 10 ** ((step % 5) - 3)));
  const b = Array.from(r.normals(7, 0, 1));
  if (step === 2) a.splice(0, 7, 0, -0.0, nonFinite ? NaN : 3e4, nonFinite ? Infinity : -2e-6, nonFinite ? -Infinity : 5e-5, Math.fround(Math.exp(-10)), 1e-30);
  return { a: tf.tensor2d(a, [3, 5]), b: tf.tensor1d(b) };
}

/** The state at fixed parameters (init copies them). */
function initial(optimizer: Optimizer): OptimizerState {
  const params = { a: tf.ones([3, 5]), b: tf.zeros([7]) };
  try {
    return optimizer.init(params);
  } finally {
    disposeTree(params);
  }
}

/** `fn`'s result and the shader keys of the GPU programs it ran (none off webgpu). */
async function withPrograms<T>(fn: () => Promise<T>): Promise<{ result: T; programs: string[] }> {
  const programs: string[] = [];
  const backend = tf.backend() as unknown as { runWebGPUProgram?: (p: { shaderKey: string }, ...rest: unknown[]) => unknown };
  const original = backend.runWebGPUProgram;
  if (original) {
    backend.runWebGPUProgram = function (p, ...rest) {
      programs.push(p.shaderKey);
      return original.call(this, p, ...rest);
    };
  }
  try {
    return { result: await fn(), programs };
  } finally {
    backend.runWebGPUProgram = original;
  }
}

type Make = () => MetaOptimizer;

/** `steps` updates from fixed parameters; the parameters and every slot after them, and the programs of the last update. */
async function run(make: Make, steps: number): Promise<{ values: number[]; programs: string[] }> {
  const meta = make();
  const optimizer = meta.optimizer();
  let state: OptimizerState = initial(optimizer);
  let programs: string[] = [];
  try {
    for (let s = 0; s < steps; s++) {
      const grads = gradients(s);
      const { result: next, programs: ran } = await withPrograms(async () => optimizer.update(state, grads, { step: s, training: false }));
      programs = ran;
      disposeTree(grads);
      disposeTree(state);
      state = next;
    }
    const values = [...(await state.params.a!.data()), ...(await state.params.b!.data())];
    const slots = state.slots as unknown as Record<string, tf.Tensor | { h: tf.Tensor; c: tf.Tensor }>;
    for (const name of Object.keys(slots).sort()) {
      const slot = slots[name]!;
      if (slot instanceof tf.Tensor) values.push(...(await slot.data()));
      else values.push(...(await slot.h.data()), ...(await slot.c.data()));
    }
    return { values, programs };
  } finally {
    disposeTree(state);
    meta.dispose();
  }
}

/**
 * The gradient with respect to φ (given explicitly, as the engine's estimators give it) of `loss` of the optimizer
 * it defines, with the programs that ran; `meta` is disposed after.
 */
async function metaGradientOf(meta: MetaOptimizer, loss: (optimizer: Optimizer) => tf.Scalar): Promise<{ values: number[]; programs: string[] }> {
  try {
    const names = Object.keys(meta.variables).sort();
    const { result: g, programs } = await withPrograms(async () =>
      tf.grads((...phi: tf.Tensor[]) => loss(meta.optimizer(Object.fromEntries(names.map((n, i) => [n, phi[i]!])))))(names.map((n) => meta.variables[n]!)),
    );
    const values: number[] = [];
    for (const t of g) values.push(...(await t.data()));
    tf.dispose(g);
    return { values, programs };
  } finally {
    meta.dispose();
  }
}

/** Equal to 1e-5 relative, NaN where NaN, the same infinities. */
function expectSame(got: number[], want: number[]): void {
  expect(got).toHaveLength(want.length);
  got.forEach((v, i) => {
    const w = want[i]!;
    if (!Number.isFinite(w)) expect(v).toBe(w);
    else expect(Math.abs(v - w)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(w)));
  });
}

describe("the LSTM-stack optimizers' update on webgpu where no tape records: one program", () => {
  afterAll(async () => {
    await useBackend('cpu');
  });

  it.each<[string, Make]>([
    ['lstm, its defaults (2 × 20, logAndSign)', () => new LstmMetaOptimizer({}, 4)],
    ['lstm, 1 × 5, no preprocessing, outputScale 0.3', () => new LstmMetaOptimizer({ layers: 1, hidden: 5, preprocessing: 'none', outputScale: 0.3 }, 4)],
    ['rnnprop, its defaults (ELU input layer, 2 × 20, Adam features, tanh output)', () => new RnnpropMetaOptimizer({}, 4)],
    ['rnnprop, 1 × 3, 4 input units', () => new RnnpropMetaOptimizer({ layers: 1, hidden: 3, inputUnits: 4, lr: 0.5 }, 4)],
  ])('gives the parameters and state of the ops on cpu over 4 steps (0, NaN and ±∞ gradients among them), with no leak: %s', async (_, make) => {
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(() => run(make, 4));
    expectSame(got.values, want.values);
    // The NaN gradient's coordinate is NaN in its parameter from step 3 (as on cpu): the comparison saw it.
    expect(want.values.some(Number.isNaN)).toBe(true);
    // One program for the features, every layer and the output (lstm's ops: 15 for two layers); then the
    // state's rows, the update's cut into the two tensors and their additions.
    expect(got.programs.filter((k) => k.startsWith('l2l_lstm_stack_step'))).toHaveLength(1);
    expect(got.programs.filter((k) => k.startsWith('matMul') || k.startsWith('l2l_lstm_gates') || k.startsWith('l2l_log'))).toEqual([]);
  });

  it.each<[string, Make]>([
    ['lstm, 2 × 6, logAndSign', () => new LstmMetaOptimizer({ hidden: 6 }, 2)],
    ['lstm, its defaults (2 × 20)', () => new LstmMetaOptimizer({}, 2)],
    ['lstm, 1 × 5, no preprocessing', () => new LstmMetaOptimizer({ layers: 1, hidden: 5, preprocessing: 'none', outputScale: 0.3 }, 2)],
    ['rnnprop, its defaults (ELU input layer, 2 × 20, Adam features, tanh output)', () => new RnnpropMetaOptimizer({}, 2)],
    ['rnnprop, 1 × 3, 4 input units, lr 0.5', () => new RnnpropMetaOptimizer({ layers: 1, hidden: 3, inputUnits: 4, lr: 0.5 }, 2)],
  ])('with constant gradients on a tape (first order), runs as one program each way: the meta-gradient of 3 updates equals cpu\'s (%s)', async (_, make) => {
    const metaGradient = async (): Promise<{ values: number[]; programs: string[] }> => {
      const meta = make();
      const start = initial(meta.optimizer());
      // Finite gradients (with the edges of logAndSign among them): one NaN would make every sum over coordinates NaN.
      const grads = [0, 1, 2].map((s) => gradients(s, false));
      try {
        // Three updates: the state's h and c carry φ's influence from step to step (the gradient's dh and dc).
        return await metaGradientOf(meta, (optimizer) => {
          let state = start;
          const terms: tf.Scalar[] = [];
          for (let s = 0; s < 3; s++) {
            state = optimizer.update(state, grads[s]!, { step: s, training: true, constantGrads: true });
            terms.push(tf.add(tf.sum(tf.mul(state.params.a!, tf.linspace(0.5, 2, 15).reshape([3, 5]))), tf.sum(tf.mul(state.params.b!, tf.linspace(-1, 1, 7)))) as tf.Scalar);
          }
          return tf.addN(terms) as tf.Scalar;
        });
      } finally {
        disposeTree(start);
        for (const gr of grads) disposeTree(gr);
      }
    };
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(metaGradient);
    expectSame(got.values, want.values);
    expect(want.values.every(Number.isFinite)).toBe(true);
    // And as a whole, relative to its size (the elementwise bound is absolute below 1).
    const norm = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
    expect(norm(got.values.map((v, i) => v - want.values[i]!)) / norm(want.values)).toBeLessThan(1e-5);
    expect(want.values.filter((v) => v !== 0).length).toBeGreaterThan(want.values.length / 2);
    expect(got.programs.filter((k) => k.startsWith('l2l_lstm_stack_step_grad'))).toHaveLength(3);
    expect(got.programs.filter((k) => /^l2l_lstm_stack_step_\d/.test(k))).toHaveLength(3);
    expect(got.programs.filter((k) => k.startsWith('l2l_lstm_gates') || k.startsWith('l2l_log'))).toEqual([]);
  });

  it.each<[string, Make]>([
    ['lstm', () => new LstmMetaOptimizer({ hidden: 6 }, 2)],
    ['rnnprop', () => new RnnpropMetaOptimizer({ hidden: 6, inputUnits: 5 }, 2)],
  ])('leaves updates under a tape to the differentiable ops: the meta-gradient of an update equals cpu\'s (%s)', async (_, make) => {
    const metaGradient = async (): Promise<{ values: number[]; programs: string[] }> => {
      const meta = make();
      const state = initial(meta.optimizer());
      const grads = gradients(1);
      try {
        return await metaGradientOf(meta, (optimizer) => {
          const next = optimizer.update(state, grads, { step: 0, training: true });
          return tf.add(tf.sum(next.params.a!), tf.sum(tf.mul(next.params.b!, tf.linspace(-1, 1, 7)))) as tf.Scalar;
        });
      } finally {
        disposeTree(state);
        disposeTree(grads);
      }
    };
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(metaGradient);
    expectSame(got.values, want.values);
    expect(got.programs.filter((k) => k.startsWith('l2l_lstm_stack_step'))).toEqual([]);
    expect(got.programs.filter((k) => k.startsWith('l2l_lstm_gates'))).not.toEqual([]);
  });
});
