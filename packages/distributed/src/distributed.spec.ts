import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  ComponentRegistry,
  createContainer,
  createTrainer,
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
import { startRedisServer, type TestRedis } from './redis-server.fixture';
import { startWorker, type DistributedWorker, type ShardEvent } from './worker';

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
  let redis: TestRedis;
  const workers: DistributedWorker[] = [];
  const events: ShardEvent[] = [];

  async function worker(concurrency = 1, lockSeconds = 30): Promise<DistributedWorker> {
    const w = await startWorker({ redis: redis.url, concurrency, lockSeconds, registry: () => registry, onShard: (e) => events.push(e) });
    workers.push(w);
    return w;
  }

  beforeAll(async () => {
    await useBackend('cpu');
    redis = await startRedisServer();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
    events.length = 0;
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
    expect(done.map((e) => e.detail)).toEqual(new Array(6).fill('done: 2 unrolls'));
    expect(new Set(done.map((e) => `${e.job.episode}/${e.job.shard}`)).size).toBe(6);
    tf.dispose([...Object.values(local), ...Object.values(remote)]);
    expect(tf.memory().numTensors).toBe(before - Object.keys(local).length);
  });
});
