/*
 * The built-in LSTM on the webgpu backend (Dawn; Mesa's software device where there is no GPU) against the same
 * run on cpu: meta-training through the pipeline (the tape on webgpu, the fused kernel on cpu), evaluation, and
 * a pretrained optimizer as a tf.Optimizer.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  ComponentRegistry,
  createContainer,
  evaluateExperimentAsync,
  isUserError,
  parseExperiment,
  resolveExperiment,
  trainExperiment,
  useBackend,
  type EvaluationResults,
} from '@l2l/core';
import { baselinesModule } from '@l2l/baselines';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';
import { learnedOptimizer } from '@l2l/pretrained';
import { onCpuThenWebGpu } from '@l2l/core/testing';

jest.setTimeout(180_000);

const registry = createContainer(optimizeesModule, metaOptimizersModule, baselinesModule).get(ComponentRegistry);

const experiment = (training: Record<string, unknown> = {}) =>
  resolveExperiment(
    parseExperiment(
      {
        name: 'webgpu-check',
        seed: 0,
        optimizee: { type: 'quadratic', options: { dims: 3, batch: 4 } },
        metaOptimizer: { type: 'lstm', options: { hidden: 4 } },
        training: { epochs: 2, episodesPerEpoch: 1, steps: 6, unroll: 3, learningRate: 0.01, validateEvery: 1, validationTasks: 1, ...training },
        evaluation: { steps: 5, tasks: 2, baselines: [{ type: 'adam' }], tuning: { learningRates: [0.01, 0.1], tasks: 1 } },
      },
      'webgpu-check.json',
    ),
    registry,
    'webgpu-check.json',
  );

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-webgpu-'));
});
afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await useBackend('cpu');
});

/** Trains and evaluates on the backend in use; the meta-gradient path, the log's rows and the evaluation. */
async function trainAndEvaluate(name: string): Promise<{ path: string; metaLosses: number[]; results: EvaluationResults }> {
  const exp = experiment();
  const outDir = path.join(dir, name);
  let metaGradient = '';
  const r = await trainExperiment(exp, registry, { outDir, baseDir: dir, events: { onStart: (info) => (metaGradient = info.metaGradient) } });
  const results = await evaluateExperimentAsync(exp, registry, { baseDir: dir, checkpoint: outDir });
  return { path: metaGradient, metaLosses: r.reports.map((x) => x.metaLoss), results };
}

const close = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

describe('the LSTM on webgpu', () => {
  it('meta-trains and evaluates as on cpu (tape there, fused kernel here), checkpoints included', async () => {
    const { cpu, webgpu: gpu } = await onCpuThenWebGpu(trainAndEvaluate);
    expect(cpu.path).toMatch(/^meta-gradients: fused kernel/);
    expect(gpu.path).toBe('meta-gradients: tfjs tape (the webgpu backend keeps tensors on the device; below about 100,000 coordinates its fused kernel on backend wasm is faster); its update and gradient as one GPU program each');
    expect(gpu.metaLosses).toHaveLength(2);
    gpu.metaLosses.forEach((m, i) => expect(close(m, cpu.metaLosses[i]!, 1e-5)).toBe(true));
    // The two checkpoints hold the same φ to float32 rounding.
    const weights = (name: string) => {
      const bytes = fs.readFileSync(path.join(dir, name, 'latest', 'weights.bin'));
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    };
    const a = weights('cpu');
    const b = weights('webgpu');
    expect(b.length).toBe(a.length);
    b.forEach((x, i) => expect(close(x, a[i]!, 1e-5)).toBe(true));
    const finals = (r: EvaluationResults) => r.optimizers.map((o) => [o.name, o.final.mean] as const);
    const want = finals(cpu.results);
    finals(gpu.results).forEach(([name, mean], i) => {
      expect(name).toBe(want[i]![0]);
      expect(close(mean, want[i]![1], 1e-5)).toBe(true);
    });
  });

  it('runs from the command line as a user runs it (Node loads Dawn itself; EGL_PLATFORM unset)', () => {
    const bin = path.resolve(__dirname, '../dist/bin.js');
    if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: build first (pnpm build)`);
    const config = path.join(dir, 'cli.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        name: 'webgpu-cli',
        backend: 'webgpu',
        seed: 0,
        optimizee: { type: 'quadratic', options: { dims: 3, batch: 4 } },
        metaOptimizer: { type: 'lstm', options: { hidden: 4 } },
        training: { epochs: 1, episodesPerEpoch: 1, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 1 },
        evaluation: { steps: 5, tasks: 2, baselines: [{ type: 'sgd' }], tuning: { learningRates: [0.1], tasks: 1 } },
      }),
    );
    const env = { ...process.env };
    delete env.EGL_PLATFORM;
    const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    const train = run(['train', config, '--out', path.join(dir, 'cli-run')]);
    expect({ code: train.status, stderr: train.status === 0 ? '' : train.stderr }).toEqual({ code: 0, stderr: '' });
    expect(train.stdout).toMatch(/^backend: webgpu \(@tensorflow\/tfjs-backend-webgpu, tfjs-core [\d.]+; (software device \(no GPU adapter found\)|device): /m);
    expect(train.stdout).toContain('meta-gradients: tfjs tape (the webgpu backend keeps tensors on the device; below about 100,000 coordinates its fused kernel on backend wasm is faster); its update and gradient as one GPU program each');
    const row = fs.readFileSync(path.join(dir, 'cli-run', 'log.csv'), 'utf8').trim().split('\n')[1]!.split(',');
    expect(Number.isFinite(Number(row[1]))).toBe(true);
    const evaluation = run(['eval', config, '--optimizer', path.join(dir, 'cli-run'), '--out', path.join(dir, 'cli-run', 'eval')]);
    expect({ code: evaluation.status, stderr: evaluation.status === 0 ? '' : evaluation.stderr }).toEqual({ code: 0, stderr: '' });
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'cli-run', 'eval', 'results.json'), 'utf8')) as EvaluationResults;
    expect(results.optimizers.map((o) => o.name).sort()).toEqual(['lstm', 'sgd(lr=0.1)']);
    for (const o of results.optimizers) expect(Number.isFinite(o.final.mean)).toBe(true);
  });

  it('says in one line, without a stack or an install hint, when Dawn finds no adapter', () => {
    const bin = path.resolve(__dirname, '../dist/bin.js');
    const config = path.join(dir, 'no-adapter.json');
    fs.writeFileSync(config, JSON.stringify({ ...experiment(), backend: 'webgpu' }));
    // No Linux machine has Direct3D 12: Dawn finds nothing, whatever GPU is there.
    const r = spawnSync(process.execPath, [bin, 'train', config, '--out', path.join(dir, 'no-adapter')], {
      cwd: dir,
      env: { ...process.env, L2L_DAWN_FLAGS: 'backend=d3d12' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('backend "webgpu"'));
    expect(lines).toEqual([
      'backend "webgpu" cannot load (Dawn found no WebGPU adapter with L2L_DAWN_FLAGS="backend=d3d12" (backend=d3d12: no adapter); unset it to let Dawn choose, with Mesa\'s software device as the fallback)',
    ]);
    expect(r.stderr).not.toMatch(/^\s+at |internal error|install it with/m);
    expect(fs.existsSync(path.join(dir, 'no-adapter', 'latest'))).toBe(false);
  });

  it('refuses training.kernel "fused", naming the backend', async () => {
    await useBackend('webgpu');
    const e = await trainExperiment(experiment({ kernel: 'fused' }), registry, { outDir: path.join(dir, 'fused'), baseDir: dir }).catch((x) => x);
    expect(isUserError(e)).toBe(true);
    expect(e.message).toMatch(/training\.kernel is "fused", but the webgpu backend keeps tensors on the device: set training\.kernel to "auto" or "tfjs"/);
  });

  it('runs the pretrained quadratic LSTM as a tf.Optimizer as on cpu', async () => {
    const fit = async () => {
      const opt = learnedOptimizer('pretrained:quadratic-lstm');
      const x = tf.tidy(() => tf.variable(tf.tensor1d([1, -2, 0.5, 3])));
      const target = tf.tensor1d([0.2, 0.1, -0.3, 0.4]);
      try {
        for (let i = 0; i < 5; i++) opt.minimize(() => tf.sum(tf.square(tf.sub(x, target))) as tf.Scalar);
        return Array.from(await x.data());
      } finally {
        opt.dispose();
        x.dispose();
        target.dispose();
      }
    };
    const { cpu: want, webgpu: got } = await onCpuThenWebGpu(fit);
    expect(got.some((v, i) => v !== [1, -2, 0.5, 3][i])).toBe(true);
    got.forEach((v, i) => expect(close(v, want[i]!, 1e-5)).toBe(true));
  });
});
