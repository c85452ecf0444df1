/**
 * The benchmark workloads, each run in a process of its own (see run.ts) so that its peak memory is its own.
 * Meta-training is timed through the engine itself: `MetaTrainer` runs one long episode cut into unrolls and
 * the time between consecutive unrolls is one meta-iteration (unroll forward, meta-gradient, Adam step),
 * exactly what `l2l train` does per unroll.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  countCoordinates,
  disposeTree,
  MetaTrainer,
  readsSynchronously,
  resolveTrainingOptions,
  runOptimizerAsync,
  useBackend,
  type BackendChoice,
  type ComponentConfig,
  type MetaOptimizer,
  type MetaOptimizerSource,
  type TaskFamily,
} from '@l2l/core';
import {
  kernelMemoryBytes,
  LstmMetaOptimizer,
  MultiscaleAdamMetaOptimizer,
  NormalizedHistoryMetaOptimizer,
  RnnpropMetaOptimizer,
  type LstmOptions,
  type MultiscaleAdamOptions,
  type NormalizedHistoryOptions,
  type RnnpropOptions,
} from '@l2l/meta-optimizers';
import { createMnistMlpFamily, createQuadraticFamily } from '@l2l/optimizees';

export const WORKLOADS = ['Q', 'M', 'M100', 'M1000', 'MR', 'MS', 'MSR', 'MNH', 'MES', 'eval'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface WorkloadSpec {
  /** Timed repetitions after warm-up. */
  runs: number;
  /** Untimed repetitions first (the first wasm iterations are slow while its heap grows). */
  warmup: number;
  /** training.checkpointEvery for the meta-training workloads (undefined or null: off). */
  checkpointEvery?: number | null;
  /** training.workers for the meta-training workloads (undefined or 0: none). */
  workers?: number;
  /** training.kernel, and the evaluation's kernel choice (undefined: auto). */
  kernel?: 'auto' | 'tfjs' | 'fused';
  /** Q's number of ten-dimensional quadratics (default 128: 1,280 coordinates); larger to see where a GPU pays off. */
  qBatch?: number;
}

/** Default repetitions: about 5 minutes in all on 2 cores (wasm). */
export const DEFAULT_SPECS: Record<WorkloadName, WorkloadSpec> = {
  Q: { runs: 10, warmup: 2 },
  M: { runs: 5, warmup: 2 },
  // A plain tape of 100 steps needs ~3.8 GiB of tensors, past what the wasm heap holds: two segments of 50.
  M100: { runs: 3, warmup: 1, checkpointEvery: 50 },
  M1000: { runs: 1, warmup: 1 },
  MR: { runs: 5, warmup: 2 },
  MS: { runs: 5, warmup: 2 },
  MSR: { runs: 5, warmup: 2 },
  MNH: { runs: 5, warmup: 2 },
  MES: { runs: 3, warmup: 1 },
  eval: { runs: 3, warmup: 1 },
};

/** What a child process measured (the parent adds versions and memory). */
export interface Measurement {
  name: WorkloadName;
  backend: string;
  /** Seconds of each timed repetition (wall clock). */
  times: number[];
  /** CPU seconds of this process (user + system, all threads) in each timed repetition. */
  cpuTimes: number[];
  warmup: number;
  coordinates: number;
  /** webgpu: the adapter, and whether it is a software device (a correctness check, not a GPU timing). */
  device?: { description: string; software: boolean };
  unroll: number | null;
  steps: number | null;
  what: string;
  /** Largest wasm heap seen (MiB), wasm only. */
  wasmHeapMb?: number;
  tfjsCore: string;
  checkpointEvery?: number | null;
  workers?: number;
  /** Largest wasm heap of each worker thread (MiB), with training.workers on wasm. */
  workerWasmHeapMb?: number[];
  /** Which path computed meta-gradients (MetaTrainer.metaGradientPath), or ran the evaluation. */
  path?: string;
  /** Largest memory of the fused kernels' instances (MiB), beside tfjs's wasm heap. */
  kernelMemoryMb?: number;
}

interface Problem {
  family: TaskFamily;
  /** The learned optimizer: the LSTM with these options, or RNNprop with its defaults. */
  lstm: Partial<LstmOptions>;
  rnnprop?: boolean;
  /** Multiscale Adam with this combiner instead of the LSTM. */
  multiscale?: 'mlp' | 'rnn';
  /** The normalised-history optimizer (its defaults) instead of the LSTM. */
  normalizedHistory?: boolean;
  /** training.estimator instead of tbptt. */
  estimator?: ComponentConfig;
  unroll: number;
}

function problem(name: WorkloadName, spec: WorkloadSpec): Problem {
  switch (name) {
    case 'Q':
      // 128 ten-dimensional quadratics (spec.qBatch); the LSTM with its defaults (logAndSign preprocessing).
      return { family: createQuadraticFamily({ dims: 10, batch: spec.qBatch ?? 128 }), lstm: {}, unroll: 20 };
    case 'M':
    case 'eval':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: { preprocessing: 'logAndSign' }, unroll: 20 };
    case 'M100':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: { preprocessing: 'logAndSign' }, unroll: 100 };
    case 'M1000':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: { preprocessing: 'logAndSign' }, unroll: 1000 };
    case 'MR':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: {}, rnnprop: true, unroll: 20 };
    case 'MS':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: {}, multiscale: 'mlp', unroll: 20 };
    case 'MSR':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: {}, multiscale: 'rnn', unroll: 20 };
    case 'MNH':
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: {}, normalizedHistory: true, unroll: 20 };
    case 'MES':
      // One antithetic pair per unroll: three forward passes of 20 steps (φ + σz, φ − σz, then φ itself).
      return { family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), lstm: { preprocessing: 'logAndSign' }, estimator: { type: 'es', options: { samples: 1 } }, unroll: 20 };
  }
}

// Process-wide: the worker threads of training.workers are counted too.
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/** For training.workers: worker threads rebuild the LSTM from its config with this module's export. */
export function lstmFactory(): (config: ComponentConfig) => MetaOptimizer {
  return (config) =>
    config.type === 'rnnprop'
      ? new RnnpropMetaOptimizer(config.options as Partial<RnnpropOptions>)
      : config.type === 'multiscale-adam'
        ? new MultiscaleAdamMetaOptimizer(config.options as Partial<MultiscaleAdamOptions>)
        : config.type === 'normalized-history'
          ? new NormalizedHistoryMetaOptimizer(config.options as Partial<NormalizedHistoryOptions>)
          : new LstmMetaOptimizer(config.options as Partial<LstmOptions>);
}
const LSTM_SOURCE: MetaOptimizerSource = { module: __filename, export: 'lstmFactory' };

function wasmHeapMb(): number | undefined {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 ? wasm.HEAPU8.length / 2 ** 20 : undefined;
}

function coordinatesOf(family: TaskFamily): number {
  const task = family.build(family.sample(0, 'train'));
  const params = task.initParams(0);
  const n = countCoordinates(params);
  disposeTree(params);
  task.dispose();
  return n;
}

/** Runs one workload on `backend` in this process. */
export async function measure(name: WorkloadName, backend: BackendChoice, spec: WorkloadSpec): Promise<Measurement> {
  const info = await useBackend(backend);
  const p = problem(name, spec);
  const coordinates = coordinatesOf(p.family); // also loads the data set, outside the timings
  const meta: MetaOptimizer = p.rnnprop
    ? new RnnpropMetaOptimizer({}, 0)
    : p.multiscale
      ? new MultiscaleAdamMetaOptimizer({ combiner: p.multiscale }, 0)
      : p.normalizedHistory
        ? new NormalizedHistoryMetaOptimizer({}, 0)
        : new LstmMetaOptimizer(p.lstm, 0);
  let heap = wasmHeapMb();
  let kernelMb = 0;
  const noteKernel = () => (kernelMb = Math.max(kernelMb, kernelMemoryBytes() / 2 ** 20));
  const base = { name, backend: tf.getBackend(), ...(info.device && { device: info.device }), warmup: spec.warmup, coordinates, tfjsCore: tf.version_core };
  try {
    if (name === 'eval') {
      const steps = 1000;
      const optimizer = meta.optimizer();
      const task = p.family.build(p.family.sample(0, 'test'));
      const times: number[] = [];
      const cpuTimes: number[] = [];
      try {
        for (let r = 0; r < spec.warmup + spec.runs; r++) {
          const start = performance.now();
          const cpu = process.cpuUsage();
          // Warm-up runs are short: they only bring kernels and the heap up.
          await runOptimizerAsync(task, optimizer, {
            steps: r < spec.warmup ? 50 : steps,
            initSeed: r,
            batchSeed: r,
            kernel: spec.kernel === 'tfjs' ? 'tfjs' : 'auto',
            threads: Math.max(1, spec.workers ?? 0),
          });
          noteKernel();
          if (r >= spec.warmup) {
            times.push((performance.now() - start) / 1000);
            cpuTimes.push(cpuSeconds(process.cpuUsage(cpu)));
          }
          heap = Math.max(heap ?? 0, wasmHeapMb() ?? 0) || undefined;
        }
      } finally {
        task.dispose();
      }
      return {
        ...base,
        times,
        cpuTimes,
        unroll: null,
        steps,
        wasmHeapMb: heap,
        kernelMemoryMb: kernelMb,
        // runOptimizer's choice: the kernel only where the backend reads synchronously (not on webgpu).
        path: optimizer.fused && spec.kernel !== 'tfjs' && readsSynchronously() ? `fused kernel, ${optimizer.fused.description}` : 'tfjs',
        what:
          `seconds for ${steps} steps of the MNIST MLP with the learned LSTM optimizer (runOptimizer: minibatch, loss and gradient, LSTM update; no tape)` +
          (spec.workers ? `; the kernel's tiles in ${spec.workers} threads` : ''),
        workers: spec.workers ?? 0,
      };
    }
    const iterations = spec.warmup + spec.runs;
    const training = resolveTrainingOptions({
      steps: p.unroll * iterations,
      unroll: p.unroll,
      episodesPerEpoch: 1,
      // Two epochs with validation every 1000: the one epoch run here does not validate.
      epochs: 2,
      validateEvery: 1000,
      ...(spec.checkpointEvery !== undefined && { checkpointEvery: spec.checkpointEvery }),
      workers: spec.workers ?? 0,
      kernel: spec.kernel ?? 'auto',
      ...(p.estimator && { estimator: p.estimator }),
    });
    const marks: number[] = [];
    const cpuMarks: NodeJS.CpuUsage[] = [];
    let workerHeaps: number[] = [];
    const trainer = new MetaTrainer(
      p.family,
      meta,
      training,
      0,
      {
        onUnroll: () => {
          marks.push(performance.now());
          cpuMarks.push(process.cpuUsage());
          heap = Math.max(heap ?? 0, wasmHeapMb() ?? 0) || undefined;
          noteKernel();
          const stats = trainer.chunked?.workerStats() ?? [];
          workerHeaps = stats.map((s, i) => Math.max(workerHeaps[i] ?? 0, s.wasmHeapBytes / 2 ** 20));
        },
      },
      LSTM_SOURCE,
    );
    const start = performance.now();
    const cpuStart = process.cpuUsage();
    try {
      const report = await trainer.trainEpoch();
      if (report.skipped) throw new Error(`${name}: the episode was skipped (non-finite meta-loss)`);
    } finally {
      trainer.dispose();
      await trainer.chunked?.dispose();
    }
    // Interval i ends at unroll i; the first also holds the episode's start (task, first loss and gradient).
    const intervals = marks.map((m, i) => (m - (i === 0 ? start : marks[i - 1]!)) / 1000);
    const cpuIntervals = cpuMarks.map((m, i) => cpuSeconds(m) - cpuSeconds(i === 0 ? cpuStart : cpuMarks[i - 1]!));
    const every = training.checkpointEvery;
    const fused = trainer.fused !== undefined;
    const what = p.estimator
      ? `seconds per meta-iteration of MetaTrainer with training.estimator "${p.estimator.type}" ${JSON.stringify(p.estimator.options)}: 3 forward passes of ${p.unroll} optimizee steps ` +
        `(LSTM updates, minibatch losses and gradients; φ + σz, φ − σz, then φ) on ${/fused forward/.test(trainer.metaGradientPath) ? 'the fused kernel' : 'tfjs'}, the estimate, and the Adam update of the LSTM weights` +
        (training.workers ? `; the kernel's tiles in ${training.workers} threads` : '')
      : `seconds per meta-iteration of MetaTrainer: one unroll of ${p.unroll} optimizee steps (${p.rnnprop ? 'RNNprop' : p.multiscale ? `multiscale Adam (${p.multiscale} combiner)` : p.normalizedHistory ? 'normalised-history' : 'LSTM'} updates, minibatch losses ` +
      'and gradients), its meta-gradient' +
      (fused
        ? ' (fused kernel: forward and first-order backward outside tfjs)'
        : every && every < p.unroll
          ? ` (gradient checkpointing: recomputed in segments of ${every} steps)`
          : ' (one tape over the unroll)') +
      `, and the Adam update of the ${p.multiscale ? 'combiner\'s' : p.rnnprop ? 'RNNprop' : p.normalizedHistory ? 'normalised-history MLP\'s' : 'LSTM'} weights` +
      (training.workers ? `; the LSTM's coordinates split over ${training.workers} worker threads (training.workers)` : '');
    return {
      ...base,
      times: intervals.slice(spec.warmup),
      cpuTimes: cpuIntervals.slice(spec.warmup),
      unroll: p.unroll,
      steps: null,
      wasmHeapMb: heap,
      kernelMemoryMb: kernelMb,
      path: trainer.metaGradientPath,
      what,
      checkpointEvery: training.checkpointEvery ?? null,
      workers: training.workers ?? 0,
      ...(workerHeaps.some((h) => h > 0) && { workerWasmHeapMb: workerHeaps }),
    };
  } finally {
    meta.dispose();
  }
}
