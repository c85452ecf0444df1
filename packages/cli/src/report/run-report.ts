import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  evaluateExperimentAsync,
  resolveSnapshotDir,
  trainExperiment,
  UserError,
  withComparisons,
  writeEvaluation,
  writeFileAtomic,
  type EvaluationResults,
  type ExperimentConfig,
  type OptimizerResult,
} from '@l2l/core';
import { RedisPopulationSource, RedisRunSource } from '@l2l/distributed';
import { prepareLockedOutput } from '../output';
import type { LoadedExperiment } from '../workspace';
import { renderReportPage, trainingStability, type EvaluationRunInfo, type GitState, type LearnedRunInfo, type ReportEvaluationPage, type TrainingSummary } from './page';
import { lossCurvesSvg } from './plot';
import { evaluationCheckpoints, type LoadedReportSpec, type ReportEvaluation, type ResolvedCheckpoint } from './spec';
import { trainingCurvesSvg, type TrainingLogRow } from './training-plot';

export interface ReportRunOptions {
  /** Directory of the page and plots (absolute). */
  outDir: string;
  /** Train each checkpoint whose directory holds none, with its config. */
  train: boolean;
  /** Run no evaluation: collect every one from the results directory. */
  collect: boolean;
  /** Run only these evaluations and collect the others (null: run all, unless collect). */
  only: readonly string[] | null;
  /** Only run (and keep) the baselines of the selected evaluations; no checkpoint needed, no page written. */
  baselinesOnly?: boolean;
  /** Only run (and keep) the checkpoints' learned optimizers on the selected evaluations; no baselines, no page written. */
  learnedOnly?: boolean;
  /** The command line, for the page. */
  command: string;
  /** Directory the command ran in: the page shows paths relative to it, as the command line does. */
  cwd: string;
  /** The backend in use: name (`wasm`) and its log line. */
  backend: { name: string; line: string };
  loadExperiment(file: string): LoadedExperiment;
  /** Progress lines (stderr). */
  log(line: string): void;
  /** Wall clock (injectable for tests); default Date.now. */
  now?: () => number;
  /** Train and evaluate on `l2l worker` processes through this Redis (l2l train/eval --redis). */
  distributed?: { redis: string; queue: string };
}

/** Runs `evaluate` with a run source on the workers when the report is distributed, closing it after. */
async function withRuns<T>(ws: LoadedExperiment, experiment: ExperimentConfig, options: Pick<ReportRunOptions, 'distributed' | 'backend' | 'log'>, evaluate: (runs?: RedisRunSource) => Promise<T>): Promise<T> {
  const runs = options.distributed && new RedisRunSource({ ...options.distributed, experiment, baseDir: ws.baseDir, backend: options.backend.name, onNotice: (m) => options.log(`notice: ${m}`) });
  try {
    return await evaluate(runs);
  } finally {
    await runs?.close();
  }
}

export interface ReportRunResult {
  /** The page written (null with baselinesOnly or learnedOnly). */
  page: string | null;
  files: string[];
  ran: string[];
  collected: string[];
}

/** The checkout's commit and changed paths (outside `exclude`); nulls outside a git checkout or without git. */
export function gitState(dir: string, exclude: readonly string[] = []): GitState {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const commit = git('rev-parse', 'HEAD').trim();
    const top = git('rev-parse', '--show-toplevel').trim();
    const changed = git('status', '--porcelain', '--untracked-files=all')
      .split('\n')
      .filter((l) => l.length > 3)
      .map((l) => l.slice(3).replace(/^.* -> /, '').replace(/^"(.*)"$/, '$1'))
      .filter((p) => {
        const abs = path.resolve(top, p);
        return !exclude.some((x) => abs === x || abs.startsWith(x + path.sep));
      });
    return { commit, changed };
  } catch {
    return { commit: null, changed: null };
  }
}

function readLog(file: string): Array<Record<string, string>> {
  if (!fs.existsSync(file)) return [];
  const [head, ...lines] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const keys = (head ?? '').split(',');
  return lines.filter((l) => l).map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i]!, v])));
}

const num = (v: string | undefined) => (v === undefined || v === '' ? null : Number(v));

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new UserError(`${file}: cannot read ${what}: ${(e as Error).message}`);
  }
}

function progress(log: (line: string) => void): (what: string, done: number) => void {
  let last = '';
  // One line per optimizer (and per tuning), not per task.
  return (what, done) => {
    if (what !== last && done <= 1) log(`  ${what}...`);
    last = what;
  };
}

/** Writes a cached run (baselines.json, learned-<name>.json) and returns it as freshly run. */
async function keepRun<T extends object>(file: string, run: T): Promise<T & { reused: false }> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(run) + '\n');
  // Let timers (progress, signals) run between long synchronous evaluations.
  await new Promise((resolve) => setImmediate(resolve));
  return { ...run, reused: false };
}

/** The baselines' half of an evaluation (baselines.json): it does not depend on the checkpoint, so it is kept and reused. */
interface BaselineRun {
  /** What the baselines' numbers depend on: optimizee, evaluation settings, seed, steps, tasks, backend. */
  key: string;
  results: EvaluationResults;
  startedAt: string;
  seconds: number;
  tuningSeconds: number;
  loadBefore: number;
  git: GitState;
}

function baselineKey(experiment: ExperimentConfig, steps: number, tasks: number, backend: string): string {
  const { optimizee, seed, evaluation } = experiment;
  return JSON.stringify({ optimizee, seed, baselines: evaluation.baselines, tuning: evaluation.tuning, steps, tasks, backend });
}

/**
 * The tuned baselines of one evaluation: reused from `<dir>/baselines.json` when it was run with the same
 * optimizee, evaluation settings, seed, steps, tasks and backend, else run (tuning included) and kept there.
 */
async function baselineRun(
  ws: LoadedExperiment,
  dir: string,
  steps: number,
  tasks: number,
  options: Pick<ReportRunOptions, 'backend' | 'log' | 'distributed'> & { git: GitState; now: () => number },
): Promise<BaselineRun & { reused: boolean }> {
  const file = path.join(dir, 'baselines.json');
  const key = baselineKey(ws.experiment, steps, tasks, options.backend.name);
  if (fs.existsSync(file)) {
    const kept = readJson<BaselineRun>(file, 'baseline results');
    if (kept.key === key) {
      options.log(`  baselines: reusing the run of ${kept.startedAt} (same optimizee, settings, seed, steps, tasks and backend)`);
      return { ...kept, reused: true };
    }
  }
  const t0 = options.now();
  const loadBefore = os.loadavg()[0]!;
  const results = await withRuns(ws, ws.experiment, options, (runs) =>
    evaluateExperimentAsync(ws.experiment, ws.registry, { baseDir: ws.baseDir, steps, tasks, onProgress: progress(options.log), ...(runs && { runs }) }),
  );
  results.backend = options.backend.name;
  const seconds = (options.now() - t0) / 1000;
  const run: BaselineRun = {
    key,
    results,
    startedAt: new Date(t0).toISOString(),
    seconds,
    tuningSeconds: Math.max(0, seconds - results.optimizers.reduce((sum, o) => sum + o.seconds, 0)),
    loadBefore,
    git: options.git,
  };
  return keepRun(file, run);
}

/** One learned optimizer's half of an evaluation (learned-<name>.json): kept and reused while its snapshot is unchanged. */
interface LearnedRun {
  /** What its numbers depend on: the snapshot (directory and content), optimizee, seed, steps, tasks, backend. */
  key: string;
  name: string;
  /** Snapshot directory, relative to the spec file. */
  snapshot: string;
  result: OptimizerResult;
  startedAt: string;
  seconds: number;
  loadBefore: number;
  git: GitState;
}

/**
 * A snapshot's identity: its directory (`.best.old`, the moment of a rename, counts as `best`) and a hash of
 * every file in it (weights, meta-optimizer.json, trainer state), so retraining changes it and touching a
 * file's time does not.
 */
function snapshotIdentity(snapshotDir: string, relativeTo: string): string {
  const hash = createHash('sha256');
  for (const f of fs.readdirSync(snapshotDir).sort()) {
    const file = path.join(snapshotDir, f);
    if (!fs.statSync(file).isFile()) continue;
    hash.update(f + '\0');
    hash.update(createHash('sha256').update(fs.readFileSync(file)).digest('hex') + '\0');
  }
  const dir = path.join(path.dirname(snapshotDir), path.basename(snapshotDir).replace(/^\.(\w+)\.old$/, '$1'));
  return `${path.relative(relativeTo, dir).split(path.sep).join('/')}@sha256:${hash.digest('hex')}`;
}

function learnedKey(experiment: ExperimentConfig, snapshot: string, steps: number, tasks: number, backend: string): string {
  const { optimizee, seed } = experiment;
  return JSON.stringify({ snapshot, optimizee, seed, steps, tasks, backend });
}

/**
 * One checkpoint's learned optimizer on one evaluation: reused from `<dir>/learned-<name>.json` when it was run
 * with the same snapshot (directory and content), optimizee, seed, steps, tasks and backend, else run and kept
 * there. Its result is named by the checkpoint's label.
 */
async function learnedRun(
  ws: LoadedExperiment,
  dir: string,
  checkpoint: ResolvedCheckpoint,
  snapshotDir: string,
  steps: number,
  tasks: number,
  options: Pick<ReportRunOptions, 'backend' | 'log' | 'distributed'> & { git: GitState; now: () => number; baseDir: string },
): Promise<LearnedRun & { reused: boolean }> {
  const { name } = checkpoint;
  const file = path.join(dir, `learned-${name}.json`);
  const key = learnedKey(ws.experiment, snapshotIdentity(snapshotDir, options.baseDir), steps, tasks, options.backend.name);
  if (fs.existsSync(file)) {
    const kept = readJson<LearnedRun>(file, 'learned-optimizer results');
    if (kept.key === key) {
      options.log(`  ${name}: reusing the run of ${kept.startedAt} (same snapshot, optimizee, seed, steps, tasks and backend)`);
      return { ...kept, result: { ...kept.result, name }, reused: true };
    }
  }
  const t0 = options.now();
  const loadBefore = os.loadavg()[0]!;
  const learnedOnly = { ...ws.experiment, evaluation: { ...ws.experiment.evaluation, baselines: [] } };
  const show = progress(options.log);
  const evaluated = await withRuns(ws, learnedOnly, options, (runs) =>
    evaluateExperimentAsync(learnedOnly, ws.registry, {
      checkpoint: snapshotDir,
      baseDir: ws.baseDir,
      steps,
      tasks,
      onProgress: (_what, done) => show(name, done),
      ...(runs && { runs }),
    }),
  );
  const [result] = evaluated.optimizers;
  const run: LearnedRun = {
    key,
    name,
    snapshot: path.relative(options.baseDir, snapshotDir) || '.',
    result: { ...result!, name },
    startedAt: new Date(t0).toISOString(),
    seconds: (options.now() - t0) / 1000,
    loadBefore,
    git: options.git,
  };
  return keepRun(file, run);
}

/** What `--train` records beside the results, so later pages can show the measured training time. */
interface TrainingRunInfo {
  /** The run directory trained, relative to the spec file (absent in older files). */
  dir?: string;
  seconds: number;
  epochs: number;
  startedAt: string;
  git: GitState;
  command: string;
}

/**
 * `l2l report`: makes sure every checkpoint exists (training the missing ones when asked), runs or collects
 * every evaluation of the spec with the checkpoints' learned optimizers and the tuned baselines, and writes the
 * results page with its loss-curve plots.
 */
export async function runReport(spec: LoadedReportSpec, options: ReportRunOptions): Promise<ReportRunResult> {
  const now = options.now ?? Date.now;
  const started = now();
  const rel = (p: string) => path.relative(spec.baseDir, p) || '.';
  const shown = (p: string) => path.relative(options.cwd, p) || '.';
  const { outDir } = options;
  const pageStem = spec.page.replace(/\.md$/, '');
  for (const name of options.only ?? []) {
    if (!spec.evaluations.some((e) => e.name === name)) {
      throw new UserError(`--only ${name}: no such evaluation in ${spec.file} (it has ${spec.evaluations.map((e) => e.name).join(', ')})`);
    }
  }
  // Provenance first: what the code was before this run wrote anything.
  const git = gitState(spec.baseDir, [outDir, spec.resolved.results, ...(spec.resolved.out ? [spec.resolved.out] : [])]);
  const loadAverage = os.loadavg()[0]!;

  // Every config is validated before anything runs: a typo fails in seconds, not after an hour of training.
  const configs = new Map<string, LoadedExperiment>();
  for (const e of spec.evaluations) configs.set(e.name, options.loadExperiment(spec.resolved.configs[e.name]!));

  /** The evaluations --only selects (every one without it), with their configs, step and task counts. */
  const selected = () =>
    spec.evaluations
      .filter((entry) => options.only === null || options.only.includes(entry.name))
      .map((entry) => {
        const ws = configs.get(entry.name)!;
        return { entry, ws, steps: entry.steps ?? ws.experiment.evaluation.steps, tasks: entry.tasks ?? spec.tasks };
      });

  if (options.baselinesOnly) {
    const ran: string[] = [];
    for (const { entry, ws, steps, tasks } of selected()) {
      options.log(`baselines of ${entry.name}: ${entry.config}, ${steps} steps, ${tasks} tasks...`);
      await baselineRun(ws, path.join(spec.resolved.results, entry.name), steps, tasks, { ...options, git, now });
      ran.push(entry.name);
    }
    return { page: null, files: [], ran, collected: [] };
  }

  const checkpoints = spec.resolved.checkpoints;
  if (options.learnedOnly) {
    // The other half of --baselines-only: both can run at once, each on a core, and the full report then reuses both.
    const untrained = checkpoints.find((c) => !hasSnapshot(c.dir));
    if (untrained) throw new UserError(`${spec.file}: --learned-only: checkpoint ${untrained.specDir}: no checkpoint there (no best/ or latest/ snapshot); train it first`);
    const snapshotDirs = checkpoints.map((c) => resolveSnapshotDir(c.dir));
    const ran: string[] = [];
    for (const { entry, ws, steps, tasks } of selected()) {
      options.log(`learned optimizers of ${entry.name}: ${entry.config}, ${steps} steps, ${tasks} tasks...`);
      for (const { checkpoint: c, index: i } of evaluationCheckpoints(spec, entry)) {
        await learnedRun(ws, path.join(spec.resolved.results, entry.name), c, snapshotDirs[i]!, steps, tasks, { ...options, git, now, baseDir: spec.baseDir });
      }
      ran.push(entry.name);
    }
    return { page: null, files: [], ran, collected: [] };
  }

  const files: string[] = [];
  fs.mkdirSync(outDir, { recursive: true });
  fs.mkdirSync(spec.resolved.results, { recursive: true });
  const missing = checkpoints.filter((c) => !hasSnapshot(c.dir));
  for (const c of missing) {
    if (!options.train || options.collect) {
      const how = c.config ? `train it with \`l2l train ${shown(c.config)} --out ${shown(c.dir)}\` or pass --train` : 'train it first';
      throw new UserError(`${spec.file}: checkpoint ${c.specDir}: no checkpoint there (no best/ or latest/ snapshot); ${how}`);
    }
    if (!c.config) throw new UserError(`${spec.file}: --train needs ${c.field}.config (the experiment config that trains ${c.specDir})`);
  }
  // Every training config is validated before the first (long) training starts.
  const trainingConfigs = new Map(missing.map((c) => [c.name, options.loadExperiment(c.config!)]));
  const infoFile = (c: ResolvedCheckpoint) => path.join(spec.resolved.results, `training-${c.name}.json`);
  // Every directory --train writes is checked and locked before the first training starts, as l2l train does its --out:
  // one that holds files l2l did not write is refused, and a concurrent run on it is refused.
  const locks: Array<() => void> = [];
  try {
    for (const c of missing) {
      locks.push(prepareLockedOutput(c.dir, 'train', { shown: shown(c.dir), flag: `${spec.file}: ${c.field}.dir`, onLost: (m) => options.log(`warning: ${m}`) }).release);
    }
    for (const c of missing) {
      const ws = trainingConfigs.get(c.name)!;
      options.log(`training ${shown(c.dir)} with ${shown(c.config!)}...`);
      const t0 = now();
      const startedAt = new Date(t0).toISOString();
      const population =
        options.distributed &&
        new RedisPopulationSource({ ...options.distributed, experiment: ws.experiment, baseDir: ws.baseDir, backend: options.backend.name, onNotice: (m) => options.log(`notice: ${m}`) });
      const result = await trainExperiment(ws.experiment, ws.registry, {
        outDir: c.dir,
        baseDir: ws.baseDir,
        ...(population && { population }),
        events: { onEpoch: (r) => options.log(`  epoch ${r.epoch}/${ws.experiment.training.epochs}: final loss ${r.finalLoss.toPrecision(4)}${r.validationLoss === undefined ? '' : `, validation ${r.validationLoss.toPrecision(4)}`}`) },
      });
      const info: TrainingRunInfo = { dir: rel(c.dir), seconds: (now() - t0) / 1000, epochs: result.epochs, startedAt, git, command: options.command };
      writeFileAtomic(infoFile(c), JSON.stringify(info, null, 2) + '\n');
    }
  } finally {
    for (const release of locks) release();
  }
  const snapshotDirs = checkpoints.map((c) => resolveSnapshotDir(c.dir));
  const snapshots = snapshotDirs.map(rel);
  const training: TrainingSummary[] = [];
  for (const [i, c] of checkpoints.entries()) {
    // One checkpoint keeps the file names of reports from before several were possible.
    const plot = checkpoints.length === 1 ? `${pageStem}-meta-training.svg` : `${pageStem}-meta-training-${c.name}.svg`;
    const legacyInfo = path.join(spec.resolved.results, 'training.json');
    const info = fs.existsSync(infoFile(c)) || checkpoints.length > 1 ? infoFile(c) : legacyInfo;
    const summary = await trainingSummary(c, shown, rel, snapshotDirs[i]!, info, outDir, plot);
    training.push({ ...summary, trainedNow: missing.includes(c) });
    if (summary.plot) files.push(path.join(outDir, summary.plot));
  }

  const pages: ReportEvaluationPage[] = [];
  const ran: string[] = [];
  const collected: string[] = [];
  for (const entry of spec.evaluations) {
    const ws = configs.get(entry.name)!;
    const steps = entry.steps ?? ws.experiment.evaluation.steps;
    const tasks = entry.tasks ?? spec.tasks;
    const dir = path.join(spec.resolved.results, entry.name);
    const runNow = !options.collect && (options.only === null || options.only.includes(entry.name));
    const own = evaluationCheckpoints(spec, entry);
    const ownSnapshots = own.map(({ index }) => snapshots[index]!);
    let results: EvaluationResults;
    let run: EvaluationRunInfo;
    if (runNow) {
      options.log(`evaluation ${entry.name}: ${entry.config}, ${steps} steps, ${tasks} tasks...`);
      const t0 = now();
      const loadBefore = os.loadavg()[0]!;
      const baselines = await baselineRun(ws, dir, steps, tasks, { ...options, git, now });
      const learnedRuns: Array<LearnedRun & { reused: boolean }> = [];
      for (const { checkpoint: c, index: i } of own) {
        learnedRuns.push(await learnedRun(ws, dir, c, snapshotDirs[i]!, steps, tasks, { ...options, git, now, baseDir: spec.baseDir }));
      }
      const learned = learnedRuns.map((l) => l.result);
      // As with the baselines, a reused run counts with the time it took when it ran.
      const learnedSeconds = learnedRuns.length ? learnedRuns.reduce((sum, l) => sum + l.seconds, 0) : null;
      results = withComparisons({ ...baselines.results, optimizers: [...learned, ...baselines.results.optimizers], backend: options.backend.name });
      run = {
        name: entry.name,
        config: entry.config,
        steps,
        tasks,
        checkpoint: ownSnapshots.length === 1 ? ownSnapshots[0]! : null,
        checkpoints: ownSnapshots,
        learned: learnedRuns.map((l): LearnedRunInfo => ({ name: l.name, snapshot: l.snapshot, reused: l.reused, startedAt: l.startedAt, seconds: l.seconds, commit: l.git.commit })),
        backend: options.backend.name,
        startedAt: new Date(t0).toISOString(),
        seconds: (learnedSeconds ?? 0) + baselines.seconds,
        tuningSeconds: baselines.tuningSeconds,
        learnedSeconds,
        baselines: { reused: baselines.reused, startedAt: baselines.startedAt, seconds: baselines.seconds, commit: baselines.git.commit },
        loadBefore: baselines.reused ? loadBefore : baselines.loadBefore,
        loadAfter: os.loadavg()[0]!,
        git,
        command: options.command,
      };
      writeEvaluation(dir, results);
      writeFileAtomic(path.join(dir, 'run.json'), JSON.stringify(run, null, 2) + '\n');
      ran.push(entry.name);
    } else {
      ({ results, run } = collect(spec, entry, dir, steps, tasks, ownSnapshots, own.map(({ checkpoint }) => checkpoint.name)));
      collected.push(entry.name);
    }
    const plot = `${pageStem}-${entry.name}.svg`;
    fs.writeFileSync(path.join(outDir, plot), await lossCurvesSvg(results, `${entry.title}: loss over ${results.tasks} held-out tasks (mean ± std)`));
    files.push(path.join(outDir, plot));
    pages.push({ entry, config: shown(spec.resolved.configs[entry.name]!), run, results, plot, ranNow: runNow });
  }

  const page = renderReportPage({
    title: spec.title,
    description: spec.description,
    timingNote: spec.timingNote,
    command: options.command,
    git,
    date: new Date(started).toISOString().replace(/\.\d+Z$/, 'Z'),
    backend: options.backend.line,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model.trim() ?? 'unknown', loadAverage },
    training,
    evaluations: pages,
    seconds: (now() - started) / 1000,
  });
  const pageFile = path.join(outDir, spec.page);
  writeFileAtomic(pageFile, page);
  files.unshift(pageFile);
  return { page: pageFile, files, ran, collected };
}

function hasSnapshot(dir: string): boolean {
  try {
    resolveSnapshotDir(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads an earlier run's results and checks they are what the spec asks for (`snapshots`: the checkpoints'
 * snapshot directories relative to the spec file, in order); the learned optimizers take the checkpoints' labels.
 */
function collect(spec: LoadedReportSpec, entry: ReportEvaluation, dir: string, steps: number, tasks: number, snapshots: string[], names: string[]) {
  const resultsFile = path.join(dir, 'results.json');
  const runFile = path.join(dir, 'run.json');
  const shown = path.join(spec.results, entry.name);
  if (!fs.existsSync(resultsFile) || !fs.existsSync(runFile)) {
    throw new UserError(`${shown}: no results of evaluation "${entry.name}" to collect (results.json and run.json); run it (without --collect, or with --only ${entry.name})`);
  }
  const results = readJson<EvaluationResults>(resultsFile, 'evaluation results');
  const run = readJson<EvaluationRunInfo>(runFile, 'run information');
  // Runs from before several checkpoints were possible only have `checkpoint`.
  const ran = run.checkpoints ?? (run.checkpoint === null ? [] : [run.checkpoint]);
  const differences: string[] = [];
  if (run.steps !== steps) differences.push(`steps ${run.steps}, the spec asks ${steps}`);
  if (run.tasks !== tasks) differences.push(`tasks ${run.tasks}, the spec asks ${tasks}`);
  if (run.config !== entry.config) differences.push(`config ${run.config}, the spec names ${entry.config}`);
  if (ran.join('\n') !== snapshots.join('\n')) {
    const listed = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');
    differences.push(
      ran.length <= 1 && snapshots.length <= 1
        ? `checkpoint ${listed(ran)}, the spec's is ${listed(snapshots)}`
        : `checkpoints ${listed(ran)}, the spec's are ${listed(snapshots)}`,
    );
  }
  if (differences.length) {
    throw new UserError(`${shown}: the collected results of "${entry.name}" were run with ${differences.join('; ')}; run it again (--only ${entry.name})`);
  }
  const learnedCount = results.optimizers.filter((o) => o.kind === 'learned').length;
  if (learnedCount !== names.length) {
    throw new UserError(`${shown}: results.json holds ${learnedCount} learned optimizers, the spec gives it ${names.length} checkpoints; run it again (--only ${entry.name})`);
  }
  let i = 0;
  results.optimizers = results.optimizers.map((o) => (o.kind === 'learned' ? { ...o, name: names[i++]! } : o));
  if (run.learned) run.learned = run.learned.map((l, j) => ({ ...l, name: names[j] ?? l.name }));
  return { results, run };
}

async function trainingSummary(
  checkpoint: ResolvedCheckpoint,
  shown: (p: string) => string,
  rel: (p: string) => string,
  snapshotDir: string,
  infoFile: string,
  outDir: string,
  plotFile: string,
): Promise<Omit<TrainingSummary, 'trainedNow'>> {
  const { dir } = checkpoint;
  const experimentFile = path.join(dir, 'experiment.json');
  const experiment = fs.existsSync(experimentFile) ? readJson<ExperimentConfig>(experimentFile, 'the checkpoint\'s experiment') : null;
  const logFile = path.join(dir, 'log.csv');
  const log = readLog(logFile);
  const trainerFile = path.join(dir, 'latest', 'trainer.json');
  const trainer = fs.existsSync(trainerFile) ? readJson<{ epoch: number; bestEpoch: number | null; bestValidation: number | null; skipped: number }>(trainerFile, 'trainer state') : null;
  const epochs = trainer?.epoch ?? log.length;
  const info = fs.existsSync(infoFile) ? readJson<TrainingRunInfo>(infoFile, 'training time') : null;
  const measured = info !== null && info.epochs === epochs && (info.dir === undefined || info.dir === rel(dir));
  const logSeconds = log.reduce((s, r) => s + (num(r.seconds) ?? 0), 0);
  let plot: string | null = null;
  if (log.length) {
    plot = plotFile;
    const rows: TrainingLogRow[] = log.map((r) => ({ epoch: num(r.epoch)!, finalLoss: num(r.final_loss), validationLoss: num(r.validation_loss) }));
    fs.writeFileSync(path.join(outDir, plot), await trainingCurvesSvg(rows, `meta-training of ${shown(dir)}: optimizee loss per epoch`));
  }
  const { epochs: _e, ...trainingOptions } = (experiment?.training ?? {}) as unknown as Record<string, unknown>;
  void _e;
  return {
    name: checkpoint.name,
    dir: shown(dir),
    config: checkpoint.config === null ? null : shown(checkpoint.config),
    snapshot: path.basename(snapshotDir).replace(/^\.(\w+)\.old$/, '$1'),
    metaOptimizer: experiment?.metaOptimizer ?? null,
    optimizee: experiment?.optimizee ?? null,
    training: experiment ? { epochs, ...trainingOptions } : null,
    epochs,
    bestEpoch: trainer?.bestEpoch ?? null,
    bestValidation: trainer?.bestValidation ?? null,
    skipped: trainer?.skipped ?? log.reduce((s, r) => s + (num(r.skipped) ?? 0), 0),
    seconds: measured ? info.seconds : logSeconds,
    secondsSource: measured ? 'measured' : 'log',
    wallSeconds: fs.existsSync(experimentFile) && fs.existsSync(logFile) ? (fs.statSync(logFile).mtimeMs - fs.statSync(experimentFile).mtimeMs) / 1000 : null,
    plot,
    stability: log.length ? trainingStability(log.map((r) => ({ metaLoss: num(r.meta_loss), validationLoss: num(r.validation_loss) }))) : null,
  };
}
