import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { Queue } from 'bullmq';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ComponentRegistry,
  createContainer,
  createTrainer,
  evaluateExperimentAsync,
  trainExperiment,
  isUserError,
  parseExperiment,
  resolveExperiment,
  useBackend,
  type ExperimentConfig,
  type NamedTensors,
} from '@l2l/core';
import { baselinesModule } from '@l2l/baselines';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';
import { RedisPopulationSource } from './learner';
import { startLocalRedis, type LocalRedis } from './local-redis';
import { AsyncPopulationSource } from './async-learner';
import { RedisRunSource } from './run-source';
import { startWorker, type DistributedWorker, type RunEvent, type ShardEvent } from './worker';

const registry = createContainer(optimizeesModule, metaOptimizersModule, baselinesModule).get(ComponentRegistry);
const baseDir = os.tmpdir();

function experiment(training: Record<string, unknown>, optimizee: Record<string, unknown> = { type: 'quadratic', options: { dims: 5, batch: 8 } }): ExperimentConfig {
  const raw = {
    name: 'distributed-test',
    backend: 'cpu',
    seed: 7,
    optimizee,
    metaOptimizer: { type: 'lstm', options: { layers: 2, hidden: 5 } },
    training: { epochs: 1, episodesPerEpoch: 2, steps: 6, unroll: 3, learningRate: 0.01, validateEvery: 1, validationTasks: 1, ...training },
  };
  return resolveExperiment(parseExperiment(raw, 'test'), registry, 'test');
}

/** One epoch of meta-training; φ after it (the caller owns the tensors). */
async function trainOneEpoch(exp: ExperimentConfig, source?: RedisPopulationSource): Promise<NamedTensors> {
  const built = createTrainer(exp, registry, { baseDir, ...(source && { population: source }) });
  try {
    await built.trainer.trainEpoch();
    return built.meta.getWeights();
  } finally {
    built.dispose();
    await source?.close();
  }
}

function expectSameBits(a: NamedTensors, b: NamedTensors): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const name of Object.keys(a)) {
    expect(Buffer.from((b[name]!.dataSync() as Float32Array).buffer)).toEqual(Buffer.from((a[name]!.dataSync() as Float32Array).buffer));
  }
}

function maxRelDiff(a: NamedTensors, b: NamedTensors): number {
  let worst = 0;
  for (const name of Object.keys(a)) {
    const x = a[name]!.dataSync();
    const y = b[name]!.dataSync();
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / Math.max(1e-3, Math.abs(x[i]!)));
  }
  return worst;
}

describe('distributed meta-training over Redis', () => {
  let redis: LocalRedis;
  const workers: DistributedWorker[] = [];
  const events: ShardEvent[] = [];
  const runEvents: RunEvent[] = [];

  async function worker(concurrency = 1, workerRegistry = registry): Promise<DistributedWorker> {
    const w = await startWorker({ redis: redis.url, concurrency, registry: () => workerRegistry, onShard: (e) => events.push(e), onRun: (e) => runEvents.push(e) });
    workers.push(w);
    return w;
  }

  beforeAll(async () => {
    await useBackend('cpu');
    redis = await startLocalRedis();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
    events.length = 0;
    runEvents.length = 0;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('gives bit for bit the weights of the same run in one process (tbptt, one task per shard, two workers)', async () => {
    const exp = experiment({ tasksPerStep: 3 });
    const local = await trainOneEpoch(exp);
    await worker(2);
    await worker(1);
    const before = tf.memory().numTensors;
    const remote = await trainOneEpoch(exp, new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir }));
    expectSameBits(local, remote);
    // Closing lets the last episode's shards see its end. Both workers took shards: 3 per episode, 2 episodes.
    await Promise.all(workers.splice(0).map((w) => w.close()));
    const done = events.filter((e) => e.what === 'done');
    expect(done.map((e) => e.detail)).toEqual(new Array(6).fill('2 unrolls'));
    expect(new Set(done.map((e) => `${e.job.episode}/${e.job.shard}`)).size).toBe(6);
    tf.dispose([...Object.values(local), ...Object.values(remote)]);
    expect(tf.memory().numTensors).toBe(before - Object.keys(local).length);
  });

  it('splits a population into shards of several tasks: ES gives the one-process weights to float32 rounding', async () => {
    const exp = experiment({ tasksPerStep: 4, estimator: { type: 'es', options: { sigma: 0.1, samples: 2 } } });
    const local = await trainOneEpoch(exp);
    await worker(2);
    const remote = await trainOneEpoch(exp, new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir, shards: 2 }));
    // Each shard averages its two tasks and the learner weighs the averages back: float32 rounding apart, the same.
    expect(maxRelDiff(local, remote)).toBeLessThan(1e-5);
    let moved = 0;
    const untrained = createTrainer(exp, registry, { baseDir });
    const start = untrained.meta.getWeights();
    untrained.dispose();
    for (const name of Object.keys(local)) moved = Math.max(moved, tf.tidy(() => tf.max(tf.abs(tf.sub(local[name]!, start[name]!))).dataSync()[0]!));
    expect(moved).toBeGreaterThan(1e-4); // the comparison is not of untrained weights
    tf.dispose([...Object.values(local), ...Object.values(remote), ...Object.values(start)]);
  });

  it('reports a shard that fails on a worker as one line naming the shard and the worker\'s reason', async () => {
    // A worker without the optimizee's package cannot rebuild the experiment.
    await worker(2, createContainer(metaOptimizersModule, baselinesModule).get(ComponentRegistry));
    const exp = experiment({ tasksPerStep: 2 });
    const error = await trainOneEpoch(exp, new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir })).catch((e) => e);
    expect(isUserError(error)).toBe(true);
    expect(error.message).toMatch(/^distributed: shard [01] of epoch 1, episode 1 failed on a worker: .*unknown optimizee type "quadratic"/);
    expect(error.message).not.toContain('\n');
  });

  it('says what it waits for when no worker takes the shards, and gives up after timeoutSeconds', async () => {
    const exp = experiment({ tasksPerStep: 2 });
    const notices: string[] = [];
    const started = Date.now();
    const error = await trainOneEpoch(
      exp,
      new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir, timeoutSeconds: 3, noticeSeconds: 1, queue: 'nobody-listens', onNotice: (m) => notices.push(m) }),
    ).catch((e) => e);
    expect(isUserError(error)).toBe(true);
    expect(error.message).toBe(`distributed: no estimate from shard(s) 0, 1 for unroll 1 of epoch 1, episode 1 in 3 s (are workers running? l2l worker --redis ${redis.url})`);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(notices[0]).toMatch(/^waited [12] s for shard\(s\) 0 \(waiting\), 1 \(waiting\) \(unroll 1, epoch 1, episode 1\); start workers with: l2l worker --redis /);
  });

  it('names a shard stuck behind the others when the workers have fewer slots than an episode has shards', async () => {
    await worker(1);
    const exp = experiment({ tasksPerStep: 2 });
    const notices: string[] = [];
    const error = await trainOneEpoch(exp, new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir, timeoutSeconds: 3, noticeSeconds: 1, onNotice: (m) => notices.push(m) })).catch((e) => e);
    expect(isUserError(error)).toBe(true);
    // The episode's end took the shard no worker had taken off the queue.
    const left = await new Queue('l2l', { connection: { url: redis.url }, prefix: 'l2l' });
    expect(await left.getWaitingCount()).toBe(0);
    await left.close();
    expect(notices[0]).toMatch(/^shard\(s\) [01] wait for a worker while the others hold theirs: all 2 shards of an episode are held at once, so start more `l2l worker --redis .*` processes or give them a larger --concurrency/);
  });

  it('refuses more shards than tasks, and a Redis it cannot reach, in one line', async () => {
    const exp = experiment({ tasksPerStep: 2 });
    expect(() => new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir, shards: 3 })).toThrow('--shards (3) must not exceed training.tasksPerStep (2): a shard holds at least one task');
    const error = await trainOneEpoch(exp, new RedisPopulationSource({ redis: 'redis://127.0.0.1:1', experiment: exp, baseDir })).catch((e) => e);
    expect(isUserError(error)).toBe(true);
    expect(error.message).toBe('cannot reach Redis at redis://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1');
    await expect(startWorker({ redis: 'http://127.0.0.1:1', registry: () => registry })).rejects.toThrow('--redis: "http://127.0.0.1:1" is not a redis:// or rediss:// URL');
  });

  it('lets go of a shard whose learner is gone, and skips shards a gone learner left in the queue', async () => {
    const exp = experiment({ tasksPerStep: 2 });
    const source = new RedisPopulationSource({ redis: redis.url, experiment: exp, baseDir });
    await worker(1);
    await source.open(0, 0); // two shards queued; the worker takes one and waits for φ
    while (!events.some((e) => e.what === 'start')) await new Promise((r) => setTimeout(r, 20));
    await source.close(); // what a learner's heartbeat stopping looks like, sooner
    const ofRun = () => events.filter((e) => e.job.run === source.run && e.what !== 'start');
    while (ofRun().length < 2) await new Promise((r) => setTimeout(r, 20));
    const ends = ofRun().map((e) => `${e.what}: ${e.detail}`);
    expect(ends).toEqual([`failed: the learner of run ${source.run} is gone (no heartbeat)`, 'skipped: the learner is gone']);
  });

  describe('evaluation runs on workers', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-distributed-eval-'));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** The experiment with a tuning grid, and a checkpoint of its learned optimizer (one short epoch). */
    async function withCheckpoint(): Promise<ExperimentConfig> {
      const raw = {
        name: 'distributed-eval',
        backend: 'cpu',
        seed: 5,
        optimizee: { type: 'quadratic', options: { dims: 5, batch: 8 } },
        metaOptimizer: { type: 'lstm', options: { layers: 2, hidden: 5 } },
        training: { epochs: 1, episodesPerEpoch: 1, steps: 6, unroll: 3, learningRate: 0.01, validateEvery: 1, validationTasks: 1 },
        evaluation: { steps: 12, tasks: 4, baselines: [{ type: 'sgd' }, { type: 'adam' }], tuning: { learningRates: [0.001, 0.01, 0.1, 1e6], tasks: 2 } },
      };
      const exp = resolveExperiment(parseExperiment(raw, 'test'), registry, 'test');
      if (!fs.existsSync(path.join(dir, 'run', 'latest'))) await trainExperiment(exp, registry, { outDir: path.join(dir, 'run'), baseDir });
      return exp;
    }

    const withoutSeconds = (r: unknown) => JSON.parse(JSON.stringify(r, (k, v) => (k === 'seconds' ? undefined : v)));

    it('give the results of evaluating in one process, number for number (a learned optimizer, tuned baselines, a diverging grid point)', async () => {
      const exp = await withCheckpoint();
      const local = await evaluateExperimentAsync(exp, registry, { checkpoint: path.join(dir, 'run'), baseDir });
      const before = tf.memory().numTensors;
      await worker(1);
      await worker(1);
      const source = new RedisRunSource({ redis: redis.url, experiment: exp, baseDir });
      try {
        const remote = await evaluateExperimentAsync(exp, registry, { checkpoint: path.join(dir, 'run'), baseDir, runs: source });
        expect(withoutSeconds(remote)).toEqual(withoutSeconds(local));
      } finally {
        await source.close();
      }
      // Nothing left behind here, nor by the (in-process) workers once closed.
      await Promise.all(workers.splice(0).map((w) => w.close()));
      expect(tf.memory().numTensors).toBe(before);
      // 4 learned runs, 2 baselines × (4 learning rates × 2 tuning tasks + 4 evaluation tasks).
      expect(runEvents.filter((e) => e.what === 'done')).toHaveLength(4 + 2 * (4 * 2 + 4));
      // The 1e6 learning rate diverges: the grid says so in both, and tuning picks another.
      expect(local.tuning[0]!.result.grid.at(-1)!.meanFinalLoss).toBe(Infinity);
    });

    it('report a run that fails on a worker in one line, and withdraw the runs no worker has taken', async () => {
      const exp = await withCheckpoint();
      await worker(1, createContainer(metaOptimizersModule, baselinesModule).get(ComponentRegistry));
      const source = new RedisRunSource({ redis: redis.url, experiment: exp, baseDir });
      try {
        const error = await evaluateExperimentAsync(exp, registry, { baseDir, runs: source }).catch((e) => e);
        expect(isUserError(error)).toBe(true);
        expect(error.message).toMatch(/^distributed: a run of sgd on train task \d+ failed on a worker: .*unknown optimizee type "quadratic"/);
      } finally {
        await source.close();
      }
      const queue = new Queue('l2l', { connection: { url: redis.url }, prefix: 'l2l' });
      await new Promise((r) => setTimeout(r, 200));
      expect(await queue.getWaitingCount()).toBe(0);
      await queue.close();
    });
  });

  describe('asynchronous training', () => {
    it('applies estimates as they come, none staler than the bound, and trains (two workers)', async () => {
      const exp = experiment({ tasksPerStep: 2, episodesPerEpoch: 4, epochs: 1 });
      const before = tf.memory().numTensors;
      await worker(1);
      await worker(1);
      const source = new AsyncPopulationSource({ redis: redis.url, experiment: exp, baseDir, staleness: 1 });
      const built = createTrainer(exp, registry, { baseDir, population: source });
      const start = built.meta.getWeights();
      try {
        const report = await built.trainer.trainEpoch();
        expect(Number.isFinite(report.metaLoss)).toBe(true);
        const end = built.meta.getWeights();
        expect(maxRelDiff(start, end)).toBeGreaterThan(1e-4);
        tf.dispose(Object.values(end));
      } finally {
        tf.dispose(Object.values(start));
        built.dispose();
        await source.close();
      }
      // 4 episodes × 2 truncations, one estimate each; none computed at a φ more than 1 step old.
      expect(source.stats.applied).toBe(8);
      expect(source.stats.byStaleness.length).toBeLessThanOrEqual(2);
      await Promise.all(workers.splice(0).map((w) => w.close()));
      expect(tf.memory().numTensors).toBe(before);
    });

    it('averages several estimates per outer step without leaving tensors behind', async () => {
      const exp = experiment({ tasksPerStep: 2, episodesPerEpoch: 2, epochs: 1 });
      const before = tf.memory().numTensors;
      await worker(1);
      await worker(1);
      const source = new AsyncPopulationSource({ redis: redis.url, experiment: exp, baseDir, gradientsPerStep: 2 });
      const built = createTrainer(exp, registry, { baseDir, population: source });
      try {
        expect(Number.isFinite((await built.trainer.trainEpoch()).metaLoss)).toBe(true);
      } finally {
        built.dispose();
        await source.close();
      }
      // 2 episodes × 2 truncations, two estimates each.
      expect(source.stats.applied).toBe(8);
      await Promise.all(workers.splice(0).map((w) => w.close()));
      expect(tf.memory().numTensors).toBe(before);
    });

    it('refuses a staleness or a batch that is not a count, in one line', () => {
      const exp = experiment({ tasksPerStep: 2 });
      expect(() => new AsyncPopulationSource({ redis: redis.url, experiment: exp, baseDir, staleness: -1 })).toThrow('--staleness must be an integer ≥ 0, got -1');
      expect(() => new AsyncPopulationSource({ redis: redis.url, experiment: exp, baseDir, gradientsPerStep: 0 })).toThrow('--gradients-per-step must be an integer ≥ 1, got 0');
      expect(() => new AsyncPopulationSource({ redis: redis.url, experiment: exp, baseDir, shards: 3 })).toThrow('--shards must be an integer from 1 to training.tasksPerStep (2), got 3');
    });
  });
});
