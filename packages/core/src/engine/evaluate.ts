import type { Optimizer } from '../contracts/optimizer';
import type { TaskFamily } from '../contracts/task';
import { deriveSeed } from '../random';
import { runOptimizerSteps } from './run';
import { awaitStep, runSteps, type Steps } from './steps';
import type { OptimizerSpec, RunOutcome, RunRequest, RunSource } from '../contracts/runs';

export interface Stats {
  mean: number;
  std: number;
}

/** One value per held-out task, in task order; null where the run diverged (non-finite) or the value is missing. */
export type PerTask = Array<number | null>;

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
  /** The loss after the last step, on that step's one minibatch. */
  final: Stats;
  /** The mean loss over the last 10 % of steps (`lastSteps(steps)`): what tables rank by. */
  finalMean: Stats;
  /** The task's full loss of the final parameters (all its data, not a minibatch), where the task has one. */
  fullLoss?: Stats;
  /** Runs whose final loss was NaN or infinite (left out of the statistics). */
  diverged: number;
  metrics?: Record<string, Stats>;
  /** Every task's own values (task i of every optimizer is the same task): what paired comparisons use. */
  perTask: { final: PerTask; finalMean: PerTask; fullLoss?: PerTask; metrics?: Record<string, PerTask> };
  seconds: number;
}

/** The steps `finalMean` averages: the last 10 % of `steps` (at least one), ending at step `steps`. */
export function lastSteps(steps: number): { from: number; to: number } {
  return { from: steps - Math.max(1, Math.ceil(steps / 10)) + 1, to: steps };
}

/** Mean loss over the steps `lastSteps` names, from a run's f(θ_0..θ_steps). */
export function lastStepsMean(losses: ArrayLike<number>, steps: number): number {
  const { from, to } = lastSteps(steps);
  let sum = 0;
  for (let s = from; s <= to; s++) sum += losses[s]!;
  return sum / (to - from + 1);
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
  /**
   * The split the tasks are drawn from: test (the default: final evaluation) or validation (choosing settings,
   * the split meta-training validates on, never the test split).
   */
  split?: 'test' | 'validation';
  /** Also collect the tasks' held-out metrics. */
  metrics?: boolean;
  /** Threads of the optimizer's fused kernel, where it has one (RunOptions.threads; default 1). */
  threads?: number;
  /** Called after each task. */
  onTask?: (done: number, total: number) => void;
  /** Run the tasks there (all at once), with `spec` rebuilding the optimizer: the same runs, elsewhere. */
  remote?: { source: RunSource; spec: OptimizerSpec };
}

/** The held-out task `i` of an evaluation: the same for every optimizer, so comparisons are fair. */
export function evaluationRun(seed: number, i: number) {
  return {
    task: deriveSeed(seed, 'eval-task', i),
    init: deriveSeed(seed, 'eval-init', i),
    batch: deriveSeed(seed, 'eval-batch', i),
  };
}

const finiteOrNull = (x: number | undefined): number | null => (x !== undefined && Number.isFinite(x) ? x : null);
const statsOf = (xs: PerTask): Stats => meanStd(xs.filter((x): x is number => x !== null));

/** One run of a request in this process (what a distributed worker does with it too). */
export function runRequest(family: TaskFamily, optimizer: Optimizer, request: RunRequest): RunOutcome {
  return runSteps(runRequestSteps(family, optimizer, request));
}

/** `runRequest` as Steps: it yields only to wait for reads on a backend that reads asynchronously (webgpu). */
export function* runRequestSteps(family: TaskFamily, optimizer: Optimizer, request: RunRequest): Steps<RunOutcome> {
  const task = family.build(family.sample(request.taskSeed, request.split));
  try {
    return yield* runOptimizerSteps(task, optimizer, {
      steps: request.steps,
      initSeed: request.initSeed,
      batchSeed: request.batchSeed,
      metrics: request.metrics,
      fullLoss: request.metrics,
      threads: request.threads,
    });
  } finally {
    task.dispose();
  }
}

/**
 * Runs `optimizer` on `tasks` held-out tasks (test-split, or `options.split`) for `steps` steps; keeps every task's final loss
 * (minibatch, mean of the last 10 % of steps, full loss) and metrics, and summarises them.
 */
export function evaluateOptimizer(family: TaskFamily, optimizer: Optimizer, kind: string, options: EvaluateOptions): OptimizerResult {
  return runSteps(evaluateOptimizerSteps(family, optimizer, kind, options));
}

/** `evaluateOptimizer`, yielding after each task (engine/steps.ts). */
export function* evaluateOptimizerSteps(family: TaskFamily, optimizer: Optimizer, kind: string, options: EvaluateOptions): Steps<OptimizerResult> {
  const started = Date.now();
  const curves: Float32Array[] = [];
  const perTask: OptimizerResult['perTask'] = { final: [], finalMean: [] };
  const fullLoss: PerTask = [];
  const metricValues: Record<string, PerTask> = {};
  let diverged = 0;
  const add = (i: number, r: RunOutcome): void => {
    const finite = Number.isFinite(r.losses[r.losses.length - 1]!);
    if (finite) curves.push(r.losses);
    else diverged++;
    perTask.final.push(finiteOrNull(r.losses[options.steps]));
    perTask.finalMean.push(finite ? finiteOrNull(lastStepsMean(r.losses, options.steps)) : null);
    fullLoss.push(finite ? finiteOrNull(r.fullLoss) : null);
    for (const [k, v] of Object.entries(r.metrics ?? {})) (metricValues[k] ??= Array<number | null>(i).fill(null)).push(finite ? finiteOrNull(v) : null);
    for (const v of Object.values(metricValues)) if (v.length === i) v.push(null);
  };
  const request = (i: number): RunRequest => {
    const seeds = evaluationRun(options.seed, i);
    return { split: options.split ?? 'test', taskSeed: seeds.task, initSeed: seeds.init, batchSeed: seeds.batch, steps: options.steps, metrics: options.metrics, threads: options.threads };
  };
  if (options.remote) {
    const { source, spec } = options.remote;
    const outcomes = yield* awaitStep(source.runAll(Array.from({ length: options.tasks }, (_, i) => ({ optimizer: spec, request: request(i) }))));
    outcomes.forEach((r, i) => add(i, r));
    options.onTask?.(options.tasks, options.tasks);
  } else {
    for (let i = 0; i < options.tasks; i++) {
      add(i, yield* runRequestSteps(family, optimizer, request(i)));
      options.onTask?.(i + 1, options.tasks);
      yield;
    }
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let s = 0; s <= options.steps; s++) {
    const st = meanStd(curves.map((c) => c[s]!));
    mean.push(st.mean);
    std.push(st.std);
  }
  const hasFull = fullLoss.some((x) => x !== null);
  if (hasFull) perTask.fullLoss = fullLoss;
  if (Object.keys(metricValues).length) perTask.metrics = metricValues;
  return {
    name: optimizer.name,
    kind,
    steps: options.steps,
    tasks: options.tasks,
    curve: { mean, std },
    final: statsOf(perTask.final),
    finalMean: statsOf(perTask.finalMean),
    ...(hasFull ? { fullLoss: statsOf(fullLoss) } : {}),
    diverged,
    metrics: perTask.metrics ? Object.fromEntries(Object.entries(perTask.metrics).map(([k, v]) => [k, statsOf(v)])) : undefined,
    perTask,
    seconds: (Date.now() - started) / 1000,
  };
}
