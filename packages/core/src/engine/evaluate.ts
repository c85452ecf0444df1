import type { Optimizer } from '../contracts/optimizer';
import type { TaskFamily } from '../contracts/task';
import { deriveSeed } from '../random';
import { runOptimizer } from './run';

export interface Stats {
  mean: number;
  std: number;
}

export interface OptimizerResult {
  /** Optimizer name as shown in tables (`lstm`, `adam(lr=0.01)`). */
  name: string;
  /** What it is: `learned` or a baseline type. */
  kind: string;
  learningRate?: number;
  steps: number;
  tasks: number;
  /** Per step 0..steps, over the runs that stayed finite. */
  curve: { mean: number[]; std: number[] };
  final: Stats;
  /** Runs whose final loss was NaN or infinite (left out of the statistics). */
  diverged: number;
  metrics?: Record<string, Stats>;
  seconds: number;
}

export function meanStd(xs: number[]): Stats {
  if (xs.length === 0) return { mean: NaN, std: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length;
  return { mean, std: Math.sqrt(variance) };
}

export interface EvaluateOptions {
  steps: number;
  tasks: number;
  seed: number;
  /** Also collect the tasks' held-out metrics. */
  metrics?: boolean;
  /** Called after each task. */
  onTask?: (done: number, total: number) => void;
}

/** The held-out task `i` of an evaluation: the same for every optimizer, so comparisons are fair. */
export function evaluationRun(seed: number, i: number) {
  return {
    task: deriveSeed(seed, 'eval-task', i),
    init: deriveSeed(seed, 'eval-init', i),
    batch: deriveSeed(seed, 'eval-batch', i),
  };
}

/** Runs `optimizer` on `tasks` held-out (test-split) tasks for `steps` steps and summarises the loss curves. */
export function evaluateOptimizer(family: TaskFamily, optimizer: Optimizer, kind: string, options: EvaluateOptions): OptimizerResult {
  const started = Date.now();
  const curves: Float32Array[] = [];
  const metricValues: Record<string, number[]> = {};
  let diverged = 0;
  for (let i = 0; i < options.tasks; i++) {
    const seeds = evaluationRun(options.seed, i);
    const task = family.build(family.sample(seeds.task, 'test'));
    try {
      const r = runOptimizer(task, optimizer, { steps: options.steps, initSeed: seeds.init, batchSeed: seeds.batch, metrics: options.metrics });
      if (Number.isFinite(r.losses[r.losses.length - 1]!)) curves.push(r.losses);
      else diverged++;
      for (const [k, v] of Object.entries(r.metrics ?? {})) (metricValues[k] ??= []).push(v);
    } finally {
      task.dispose();
    }
    options.onTask?.(i + 1, options.tasks);
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let s = 0; s <= options.steps; s++) {
    const st = meanStd(curves.map((c) => c[s]!));
    mean.push(st.mean);
    std.push(st.std);
  }
  const metrics = Object.keys(metricValues).length
    ? Object.fromEntries(Object.entries(metricValues).map(([k, v]) => [k, meanStd(v)]))
    : undefined;
  return {
    name: optimizer.name,
    kind,
    steps: options.steps,
    tasks: options.tasks,
    curve: { mean, std },
    final: meanStd(curves.map((c) => c[options.steps]!)),
    diverged,
    metrics,
    seconds: (Date.now() - started) / 1000,
  };
}
