/**
 * Distributed meta-training against one process, A/B in one run (`node bench/dist/distributed.js [--workers 2]
 * [--rounds 2] [--episodes 3]`): one MNIST epoch (episodes × 60 steps, unroll 20, tasksPerStep = --workers, one
 * validation task) trained (A) in this process on one thread, (B) in this process with training.workers threads,
 * (C) by a learner here and --workers worker processes (distributed-worker.js) over a local redis-server. Prints
 * one JSON line per run and a summary: wall and CPU seconds (the learner's, and the workers' from /proc), and
 * whether C's weights equal A's bit for bit; then (D) the same on the workers, asynchronously (AsyncPopulationSource:
 * not the same weights; its meta-loss and validation loss beside the others'). Needs redis-server on PATH.
 *
 * With `--eval`: the quadratic demo's evaluation instead (experiments/quadratic.json, pretrained:quadratic-lstm,
 * 100 test tasks, 4 baselines tuned on 13 learning rates × 10 tasks), (A) in this process, (C) as runs on the
 * workers, and whether C's results equal A's (timing fields aside). Run from the repository root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { baselinesModule } from '@l2l/baselines';
import { ComponentRegistry, createContainer, createTrainer, evaluateExperimentAsync, parseExperiment, resolveExperiment, useBackend, type ExperimentConfig, type PopulationSource } from '@l2l/core';
import { AsyncPopulationSource, RedisPopulationSource, RedisRunSource, startLocalRedis } from '@l2l/distributed';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const WORKERS = arg('workers', 2);
const ROUNDS = arg('rounds', 2);
const EPISODES = arg('episodes', 3);
const EVAL = process.argv.includes('--eval');

const registry = createContainer(optimizeesModule, metaOptimizersModule, baselinesModule).get(ComponentRegistry);

function experiment(threads: number): ExperimentConfig {
  const raw = {
    name: 'bench-distributed',
    backend: 'wasm',
    seed: 0,
    optimizee: { type: 'mnist-mlp', options: { hidden: [20], activation: 'sigmoid', batchSize: 128 } },
    metaOptimizer: { type: 'lstm', options: { layers: 2, hidden: 20, preprocessing: 'logAndSign', k: 10 } },
    training: { epochs: 1, episodesPerEpoch: EPISODES, steps: 60, unroll: 20, learningRate: 0.01, validateEvery: 1, validationTasks: 1, tasksPerStep: WORKERS, workers: threads },
  };
  return resolveExperiment(parseExperiment(raw, 'bench'), registry, 'bench');
}

/** CPU seconds (user + system) of a process so far, from /proc. */
function procCpu(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14, 15), in clock ticks of 1/100 s
}

async function train(exp: ExperimentConfig, population?: PopulationSource): Promise<{ wall: number; cpu: number; weights: Buffer; metaLoss: number; validation: number }> {
  const built = createTrainer(exp, registry, { baseDir: process.cwd(), ...(population && { population }) });
  try {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const report = await built.trainer.trainEpoch();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(cpu0);
    const w = built.meta.getWeights();
    const weights = Buffer.concat(Object.keys(w).sort().map((k) => Buffer.from((w[k]!.dataSync() as Float32Array).buffer)));
    for (const t of Object.values(w)) t.dispose();
    return { wall, cpu: (c.user + c.system) / 1e6, weights, metaLoss: report.metaLoss, validation: report.validationLoss ?? NaN };
  } finally {
    built.dispose();
    await population?.close?.();
  }
}

/** The quadratic demo's evaluation, here and on the workers, per round. */
async function evaluations(url: string, workers: ChildProcess[], rows: Array<Record<string, unknown>>): Promise<void> {
  const file = path.resolve('experiments/quadratic.json');
  const exp = resolveExperiment(parseExperiment(JSON.parse(fs.readFileSync(file, 'utf8')), file), registry, file);
  const options = { checkpoint: path.resolve('packages/pretrained/checkpoints/quadratic-lstm'), baseDir: path.dirname(file) };
  const timed = async (runs?: RedisRunSource) => {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const results = await evaluateExperimentAsync(exp, registry, { ...options, ...(runs && { runs }) });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(cpu0);
    await runs?.close();
    return { wall, cpu: (c.user + c.system) / 1e6, json: JSON.stringify(results, (k, v) => (k === 'seconds' ? undefined : v)) };
  };
  for (let r = 1; r <= ROUNDS; r++) {
    const a = await timed();
    rows.push({ round: r, how: 'eval in one process', wall_s: a.wall, cpu_s: a.cpu });
    console.log(JSON.stringify(rows.at(-1)));
    const before = workers.map((w) => procCpu(w.pid!));
    const c = await timed(new RedisRunSource({ redis: url, experiment: exp, baseDir: options.baseDir }));
    const workersCpu = workers.reduce((s, w, i) => s + procCpu(w.pid!) - before[i]!, 0);
    rows.push({ round: r, how: `eval runs on ${WORKERS} worker processes`, wall_s: c.wall, cpu_s: c.cpu, workers_cpu_s: workersCpu, same_results: c.json === a.json });
    console.log(JSON.stringify(rows.at(-1)));
  }
  console.log(
    JSON.stringify({
      what: `the quadratic demo's evaluation (experiments/quadratic.json, pretrained:quadratic-lstm; 100 test tasks, 4 baselines tuned on 13 learning rates × 10 tasks), per round: in one process, then as runs on ${WORKERS} worker processes over a local Redis (each round a new learner run, which the workers rebuild)`,
      rows,
    }),
  );
}

void (async () => {
  await useBackend('wasm');
  const redis = await startLocalRedis();
  const workers: ChildProcess[] = [];
  try {
    for (let i = 0; i < WORKERS; i++) {
      const child = spawn(process.execPath, [path.join(__dirname, 'distributed-worker.js'), redis.url], { stdio: ['ignore', 'pipe', 'inherit'] });
      workers.push(child);
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    }
    const rows: Array<Record<string, unknown>> = [];
    if (EVAL) {
      await evaluations(redis.url, workers, rows);
      return;
    }
    for (let r = 1; r <= ROUNDS; r++) {
      const a = await train(experiment(0));
      rows.push({ round: r, how: 'one process, one thread', wall_s: a.wall, cpu_s: a.cpu, meta_loss: a.metaLoss, validation_loss: a.validation });
      console.log(JSON.stringify(rows.at(-1)));
      const b = await train(experiment(WORKERS));
      rows.push({ round: r, how: `one process, ${WORKERS} threads`, wall_s: b.wall, cpu_s: b.cpu });
      console.log(JSON.stringify(rows.at(-1)));
      const before = workers.map((w) => procCpu(w.pid!));
      const exp = experiment(0);
      const c = await train(exp, new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir: process.cwd() }));
      const workersCpu = workers.reduce((s, w, i) => s + procCpu(w.pid!) - before[i]!, 0);
      rows.push({ round: r, how: `learner + ${WORKERS} worker processes`, wall_s: c.wall, cpu_s: c.cpu, workers_cpu_s: workersCpu, same_weights_as_one_thread: Buffer.compare(a.weights, c.weights) === 0, meta_loss: c.metaLoss, validation_loss: c.validation });
      console.log(JSON.stringify(rows.at(-1)));
      // Asynchronous: the same outer steps, each averaging as many estimates as C's (not the same weights).
      const before2 = workers.map((w) => procCpu(w.pid!));
      const asynchronous = new AsyncPopulationSource({ redis: redis.url, experiment: exp, baseDir: process.cwd(), gradientsPerStep: WORKERS });
      const d = await train(exp, asynchronous);
      const workersCpu2 = workers.reduce((s, w, i) => s + procCpu(w.pid!) - before2[i]!, 0);
      rows.push({ round: r, how: `learner + ${WORKERS} worker processes, asynchronous, ${WORKERS} estimates per step`, wall_s: d.wall, cpu_s: d.cpu, workers_cpu_s: workersCpu2, meta_loss: d.metaLoss, validation_loss: d.validation, applied_by_staleness: asynchronous.stats.byStaleness, dropped: asynchronous.stats.dropped, same_weights_as_one_thread: Buffer.compare(a.weights, d.weights) === 0 });
      console.log(JSON.stringify(rows.at(-1)));
    }
    console.log(
      JSON.stringify({
        what: `one MNIST meta-training epoch (${EPISODES} episodes × 60 steps, unroll 20, tasksPerStep ${WORKERS}, lstm 2×20, wasm, one validation task), per round: one thread, ${WORKERS} threads, learner + ${WORKERS} worker processes over a local Redis, then the same asynchronously; each round is a new learner run, which the workers rebuild (MNIST loaded, the experiment built) inside their CPU time`,
        rows,
      }),
    );
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await redis.stop();
  }
})();
