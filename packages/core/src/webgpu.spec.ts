/*
 * The webgpu backend through Dawn (npm `webgpu`): on a machine without a GPU, Mesa's software device (.ci/run
 * installs its EGL libraries). The engine's reads there are asynchronous; these tests run the same small
 * computations on cpu and on webgpu and compare them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describeBackend, readsSynchronously, useBackend, type BackendInfo } from './backend';
import { resolveTrainingOptions } from './config/experiment';
import { TinyFamily, TinyMeta } from './engine/engine.fixture';
import { BUILTIN_ESTIMATORS } from './engine/estimators';
import { choosePath } from './engine/estimators/tbptt';
import { evaluateOptimizerSteps } from './engine/evaluate';
import { MetaTrainer } from './engine/meta-trainer';
import { runOptimizer, runOptimizerAsync } from './engine/run';
import { runStepsAsync, runWhereReadable, scalarStep } from './engine/steps';
import { VariableOptimizer } from './variable-optimizer';
import type { Task } from './contracts/task';
import type { Optimizer } from './contracts/optimizer';
import { webGpuDevice, WebGpuDeviceError } from './webgpu';
import { onCpuThenWebGpu } from './testing/backends';

// Dawn compiles every new shader on the software device: the first runs take seconds.
jest.setTimeout(120_000);

const training = resolveTrainingOptions({ epochs: 2, episodesPerEpoch: 2, steps: 6, unroll: 3, learningRate: 0.05, validateEvery: 1, validationTasks: 2 });

/** Two epochs of meta-training and an evaluation of the result, on the backend in use. */
async function trainAndEvaluate(options = training): Promise<{ metaLosses: number[]; validation: number[]; weights: number[]; curve: number[] }> {
  const meta = new TinyMeta();
  const trainer = new MetaTrainer(new TinyFamily(3), meta, options, 7);
  const metaLosses: number[] = [];
  const validation: number[] = [];
  try {
    for (let e = 0; e < options.epochs; e++) {
      const r = await trainer.trainEpoch();
      metaLosses.push(r.metaLoss);
      validation.push(r.validationLoss!);
    }
    const weights = [...(await meta.variables.a!.data()), ...(await meta.variables.b!.data())];
    const result = await runStepsAsync(evaluateOptimizerSteps(new TinyFamily(3), meta.optimizer(), 'learned', { steps: 5, tasks: 3, seed: 1 }));
    return { metaLosses, validation, weights, curve: result.curve.mean };
  } finally {
    trainer.dispose();
    meta.dispose();
  }
}

function expectClose(actual: number[], expected: number[], rel: number): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(expected[i]!))));
}

describe('the webgpu backend', () => {
  let info: BackendInfo;
  beforeAll(async () => {
    info = await useBackend('webgpu');
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('loads through Dawn, says which device it runs on, and reads only asynchronously', async () => {
    await useBackend('webgpu');
    expect(info).toMatchObject({ choice: 'webgpu', name: 'webgpu', package: '@tensorflow/tfjs-backend-webgpu' });
    const device = webGpuDevice()!;
    expect(info.device).toEqual({ description: device.description, software: device.software });
    expect(device.description.length).toBeGreaterThan(0);
    expect(describeBackend(info)).toMatch(info.device!.software ? /; software device \(no GPU adapter found\): / : /; device: /);
    expect(readsSynchronously()).toBe(false);
    const t = tf.square(tf.tensor1d([1, -2, 3]));
    expect(Array.from(await t.data())).toEqual([1, 4, 9]);
    t.dispose();
    await useBackend('cpu');
    expect(readsSynchronously()).toBe(true);
  });

  it('meta-trains and evaluates as cpu does (tape on both), and leaves no tensor behind', async () => {
    const { cpu, webgpu: gpu } = await onCpuThenWebGpu(() => trainAndEvaluate());
    // float32 on both; the device's reduction order differs from cpu's.
    expectClose(gpu.metaLosses, cpu.metaLosses, 1e-5);
    expectClose(gpu.validation, cpu.validation, 1e-5);
    expectClose(gpu.weights, cpu.weights, 1e-5);
    expectClose(gpu.curve, cpu.curve, 1e-5);
    // Training moved φ: the comparison is not of two untouched initial values.
    expect(Math.abs(cpu.weights[0]! - Math.log(0.1))).toBeGreaterThan(1e-3);
  });

  it('meta-trains with an unroll of 12 and 9 tasks per step as cpu does: sums of more terms than one GPU program binds', async () => {
    // A sum of more than 7 tensors once read as zeros on the device (tfjs-webgpu's AddN; webgpu.ts chunks it).
    const long = resolveTrainingOptions({ epochs: 1, episodesPerEpoch: 1, steps: 12, unroll: 12, tasksPerStep: 9, learningRate: 0.05, validateEvery: 1, validationTasks: 9 });
    const { cpu, webgpu: gpu } = await onCpuThenWebGpu(() => trainAndEvaluate(long));
    expect(cpu.metaLosses[0]).toBeGreaterThan(0);
    expectClose(gpu.metaLosses, cpu.metaLosses, 1e-5);
    expectClose(gpu.validation, cpu.validation, 1e-5);
    expectClose(gpu.weights, cpu.weights, 1e-5);
  });

  it('runs an optimizer with asynchronous reads; the synchronous entry point says to use them', async () => {
    const family = new TinyFamily(3);
    const options = { steps: 4, initSeed: 1, batchSeed: 2 };
    await useBackend('cpu');
    const meta = new TinyMeta();
    let task = family.build(family.sample(3, 'test'));
    const want = runOptimizer(task, meta.optimizer(), options).losses;
    task.dispose();
    await useBackend('webgpu');
    task = family.build(family.sample(3, 'test'));
    try {
      expect(() => runOptimizer(task, meta.optimizer(), options)).toThrow(/asynchronous reads \(webgpu\): drive it with runStepsAsync/);
      const got = await runOptimizerAsync(task, meta.optimizer(), options);
      expectClose(Array.from(got.losses), Array.from(want), 1e-5);
    } finally {
      task.dispose();
      meta.dispose();
    }
  });

  it('updates variables with VariableOptimizer.minimizeAsync as minimize does on cpu', async () => {
    const run = async (asynchronous: boolean) => {
      const meta = new TinyMeta();
      const w = tf.tidy(() => tf.variable(tf.tensor1d([0.5, -1, 2])));
      const opt = new VariableOptimizer(meta.optimizer(), { w });
      const loss = () => tf.sum(tf.square(tf.sub(w, tf.tensor1d([1, 2, 3])))) as tf.Scalar;
      try {
        const losses: number[] = [];
        for (let i = 0; i < 3; i++) losses.push(asynchronous ? await opt.minimizeAsync(loss) : opt.minimize(loss));
        if (asynchronous) expect(() => opt.minimize(loss)).toThrow(/cannot read synchronously: use minimizeAsync/);
        return [...losses, ...(await w.data())];
      } finally {
        opt.dispose();
        w.dispose();
        meta.dispose();
      }
    };
    await useBackend('cpu');
    const atStart = tf.memory().numTensors;
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu((backend) => run(backend === 'webgpu'));
    // The helper checks webgpu's run; this, that the synchronous run on cpu freed its tensors too.
    expect(tf.memory().numTensors).toBe(atStart);
    expectClose(got.slice(0, 3), want.slice(0, 3), 1e-5);
    // The fourth, refused update changed nothing: w as after three.
    expectClose(got.slice(3), want.slice(3), 1e-5);
  });

  it('estimates meta-gradients by ES and PES (forward passes, a held-out objective) as cpu does', async () => {
    const estimate = async (type: 'es' | 'pes', metric: string | null) => {
      const meta = new TinyMeta();
      const family = new TinyFamily(3);
      const built = family.build(family.sample(0, 'train'));
      // A full loss as a task answers it: a number on cpu, a promise on webgpu.
      const task: Task = {
        ...built,
        fullLoss: (p) => runWhereReadable(scalarStep(tf.tidy(() => built.loss(p, built.batch(0, 0))))),
      };
      const estimator = BUILTIN_ESTIMATORS[type]({ sigma: 0.1, samples: 2, metric }).create({ meta, training: { lossWeights: 'uniform', secondDerivatives: false, tasksPerStep: 1 } });
      const state = estimator.init(task, task.initParams(1), 2);
      try {
        const out: number[] = [];
        for (let k = 0; k < 2; k++) {
          const { grads, metaLosses } = await estimator.estimate([state], 3, 5 + k);
          out.push(...metaLosses, state.loss, ...(await grads.a!.data()), ...(await grads.b!.data()));
          tf.dispose(Object.values(grads));
        }
        return out;
      } finally {
        state.dispose();
        estimator.dispose();
        task.dispose();
        meta.dispose();
      }
    };
    for (const [type, metric] of [['es', null], ['pes', null], ['es', 'fullLoss']] as const) {
      const { cpu: want, webgpu: got } = await onCpuThenWebGpu(() => estimate(type, metric), `${type} (metric ${metric})`);
      // (L⁺ − L⁻)/2σ magnifies the devices' float32 differences: 1e-4 here, 1e-5 for the losses.
      expectClose(got, want, 1e-4);
      expect(got.every(Number.isFinite)).toBe(true);
    }
  });

  it('refuses worker threads on the tape with a UserError that says what to set', async () => {
    await useBackend('webgpu');
    const meta = new TinyMeta();
    try {
      const tape = BUILTIN_ESTIMATORS.tbptt({});
      expect(() => tape.create({ meta, training: { lossWeights: 'uniform', secondDerivatives: false, tasksPerStep: 1, workers: 2 } })).toThrow(
        /^training\.workers \(2\) splits coordinates over CPU threads, which the webgpu backend does not use: set training\.workers to 0$/,
      );
    } finally {
      meta.dispose();
    }
  });

  it('says which path computes meta-gradients, with the CPU hint only for a meta-optimizer that has a fused kernel', async () => {
    await useBackend('webgpu');
    const meta = new TinyMeta();
    try {
      // TinyMeta has no fused kernel: nothing to point to on wasm.
      expect(choosePath(meta, { kernel: 'auto', secondDerivatives: false }).description).toBe('meta-gradients: tfjs tape (meta-optimizer "tiny-meta" has no fused kernel)');
      expect(choosePath(meta, { kernel: 'tfjs', secondDerivatives: false }).description).toBe('meta-gradients: tfjs tape (training.kernel "tfjs")');
    } finally {
      meta.dispose();
    }
  });

  it("adds the optimizer's GPU step to the tape's line on webgpu, with first-order meta-gradients only", async () => {
    // An optimizer that says it runs a GPU program of its own (as lstm and rnnprop do).
    class GpuStepMeta extends TinyMeta {
      override optimizer(weights?: Readonly<Record<string, tf.Tensor>>): Optimizer {
        return Object.assign(super.optimizer(weights), { gpuStep: 'its update as one GPU program' });
      }
    }
    const meta = new GpuStepMeta();
    try {
      await useBackend('webgpu');
      expect(choosePath(meta, { kernel: 'auto', secondDerivatives: false }).description).toBe('meta-gradients: tfjs tape (meta-optimizer "tiny-meta" has no fused kernel); its update as one GPU program');
      expect(choosePath(meta, { kernel: 'auto', secondDerivatives: true }).description).toBe('meta-gradients: tfjs tape (second derivatives are on)');
      await useBackend('cpu');
      expect(choosePath(meta, { kernel: 'auto', secondDerivatives: false }).description).toBe('meta-gradients: tfjs tape (meta-optimizer "tiny-meta" has no fused kernel)');
    } finally {
      meta.dispose();
    }
  });

  it('sums more tensors than the device binds at once (a 20-step unroll\'s losses) as cpu does, gradient included', async () => {
    const sum = async () => {
      const xs = Array.from({ length: 20 }, (_, i) => tf.tensor1d([i + 0.5, -2 * i, i * i]));
      const f = (...ys: tf.Tensor[]) => tf.sum(tf.mul(tf.addN(ys), tf.tensor1d([1, 2, 3])));
      const grads = tf.grads(f)(xs);
      const total = tf.addN(xs);
      const out = [...(await total.data())];
      for (const g of grads) out.push(...(await g.data()));
      tf.dispose([...xs, ...grads, total]);
      return out;
    };
    // Tensors and the backend's buffers left behind fail it: the chunked kernel frees its partial sums.
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(sum);
    // More inputs than one program may bind: tfjs's own AddN would be refused there and read as zeros.
    expect((tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBuffersPerShaderStage).toBeLessThan(21);
    expect(want.slice(0, 3)).toEqual([200, -380, 2470]);
    expectClose(got, want, 1e-6);
  });

  it('multiplies batches of more matrices than one dispatch holds (65,535) as cpu does, transposed and broadcast', async () => {
    // Just past the limit: the software device takes seconds per product (a gradient's two would double it).
    const batch = 65_536 + 3;
    const products = async () => {
      const a = tf.tidy(() => tf.sin(tf.reshape(tf.range(0, batch * 6), [batch, 2, 3])));
      const b = tf.tidy(() => tf.cos(tf.reshape(tf.range(0, batch * 6), [batch, 3, 2])));
      const shared = tf.tensor2d([[1, -1], [0.5, 2], [-3, 0.25]]);
      // The transposed product is what a gradient of matMul(a, b) computes.
      const ys = [tf.matMul(a, b), tf.matMul(a, shared), tf.matMul(a, b, true, true)];
      const out = await Promise.all(ys.map(async (y) => ({ shape: y.shape, values: [...(await y.data())] })));
      tf.dispose([a, b, shared, ...ys]);
      return out;
    };
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(products);
    expect((tf.backend() as unknown as { device: GPUDevice }).device.limits.maxComputeWorkgroupsPerDimension).toBeLessThan(batch);
    expect(got.map((y) => y.shape)).toEqual([[batch, 2, 2], [batch, 2, 2], [batch, 3, 3]]);
    // One expectation per product: a million of them would take a minute.
    const worst = got.map((y, i) => y.values.reduce((m, v, k) => Math.max(m, Math.abs(v - want[i]!.values[k]!) / Math.max(1, Math.abs(want[i]!.values[k]!))), 0));
    expect(worst.every((w) => w <= 1e-5)).toBe(true);
  });

  it('onCpuThenWebGpu gives both runs\' results and fails a webgpu run that leaves a tensor or a buffer behind', async () => {
    const both = await onCpuThenWebGpu(async (backend) => `${backend}:${tf.getBackend()}`);
    expect(both).toEqual({ cpu: 'cpu:cpu', webgpu: 'webgpu:webgpu' });
    const kept: tf.Tensor[] = [];
    await expect(onCpuThenWebGpu(async () => void kept.push(tf.scalar(1)), 'the leaky run')).rejects.toThrow(
      /^on webgpu the leaky run left 1 tensor\(s\) and 1 backend buffer\(s\) behind$/,
    );
    tf.dispose(kept);
  });

  // Last: the error it provokes stays with this backend (every later read throws).
  it('throws on the next read once the GPU has refused work, instead of returning what it never wrote', async () => {
    await useBackend('webgpu');
    const x = tf.square(tf.tensor1d([1, 2]));
    expect(Array.from(await x.data())).toEqual([1, 4]);
    // A buffer with no usage is a validation error, reported by Dawn as an event, not an exception.
    (tf.backend() as unknown as { device: GPUDevice }).device.createBuffer({ size: 4, usage: 0 });
    await expect(x.data()).rejects.toThrow(WebGpuDeviceError);
    await expect(x.data()).rejects.toThrow(/^webgpu: the GPU refused work, so results computed since are wrong: .*usage/i);
    x.dispose();
  });
});
