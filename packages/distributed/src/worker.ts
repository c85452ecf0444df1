import type { Redis } from 'ioredis';
import {
  createTrainer,
  deriveSeed,
  disposeTree,
  runRequestSteps,
  runStepsAsync,
  useBackend,
  UserError,
  type BackendChoice,
  type BuiltTrainer,
  type ComponentRegistry,
  type JsonValue,
  type Optimizer,
  type TaskFamily,
} from '@l2l/core';
import { QueueThread, type TakenJob } from './queue-thread';
import { connectRedis, duplicateConnection } from './redis';
import { DEFAULT_PREFIX, DEFAULT_QUEUE, RunKeys, STOP, type AsyncEstimateMeta, type OutcomeJson, type PhiMeta, type PopulationJob, type RunInfo, type RunJob, type ShardJob, type StoredSpec } from './protocol';
import { decodeMessage, decodeVersion, encodeMessage, numbersOut, outcomeOut } from './wire';

export interface WorkerOptions {
  /** redis:// URL of the learner's Redis. */
  redis: string;
  queue?: string;
  prefix?: string;
  /** Shards this process holds at once (they take turns on its thread); default 1. */
  concurrency?: number;
  /** The component registry a run's experiment is built with (its plugins, resolved from `baseDir`). */
  registry(info: RunInfo, baseDir: string): ComponentRegistry;
  /** Directory relative paths and plugins resolve from; default: the learner's. */
  baseDir?: string;
  /** tfjs backend; default: the learner's (what makes a shard's estimate the one the learner would make). */
  backend?: BackendChoice;
  /**
   * Seconds a job's lock lives without renewal (BullMQ's lockDuration, default 30): a worker killed mid-episode
   * has its shard taken over by another after about this long. The worker's queue thread (QueueThread) renews the
   * locks, also while a truncation or run keeps the worker's thread busy for longer than this.
   */
  lockSeconds?: number;
  /** Told of each shard this worker starts and ends. */
  onShard?(event: ShardEvent): void;
  /** Told of each evaluation or tuning run this worker ends. */
  onRun?(event: RunEvent): void;
  /** Told if the worker stops taking jobs (its queue thread failed): the process should end, saying why. */
  onFailure?(message: string): void;
  /** Told of an asynchronous population job that failed. */
  onPopulation?(event: { job: PopulationJob; detail: string }): void;
}

export interface ShardEvent {
  job: ShardJob;
  what: 'start' | 'done' | 'skipped' | 'failed';
  /** Unrolls computed ("3 unrolls"), why it was skipped, or the error (failed); empty at the start. */
  detail: string;
}

/** A running worker: `close` lets it finish its current truncation, then stops it and frees what it built. */
export interface DistributedWorker {
  close(): Promise<void>;
}

export interface RunEvent {
  job: RunJob;
  what: 'done' | 'skipped' | 'failed';
  /** The run's steps (done), why it was skipped, or the error (failed). */
  detail: string;
}

/** Why a job was let go: its lock lapsed (the worker stalled), and another worker may compute it now. */
const TAKEN_OVER = 'its lock lapsed and another worker took it over';

/** What a worker built of a learner's run, lazily: the trainer for shards, the family and optimizers for runs. */
class WorkerRun {
  active = 0;
  private built?: BuiltTrainer;
  private family?: TaskFamily;
  private readonly optimizers = new Map<number, Promise<{ optimizer: Optimizer; dispose(): void }>>();

  constructor(
    private readonly keys: RunKeys,
    private readonly info: RunInfo,
    private readonly registry: ComponentRegistry,
    private readonly baseDir: string,
  ) {}

  /** The experiment's seed (what asynchronous population jobs derive their estimators' seeds from). */
  get seed(): number {
    return this.info.experiment.seed;
  }

  trainer(): BuiltTrainer['trainer'] {
    this.built ??= createTrainer(this.info.experiment, this.registry, { baseDir: this.baseDir, where: `run ${this.keys.run}` });
    return this.built.trainer;
  }

  /** The experiment's optimizee family, seeded as `l2l eval` seeds it. */
  runFamily(): TaskFamily {
    const { experiment } = this.info;
    this.family ??= this.registry.create('optimizee', experiment.optimizee, { seed: deriveSeed(experiment.seed, 'optimizee'), baseDir: this.baseDir }, '', 'optimizee');
    return this.family;
  }

  /** Stored optimizer k, rebuilt once: a registered one from its config, a learned one from its config and φ. */
  optimizer(k: number, redis: Redis): Promise<Optimizer> {
    let entry = this.optimizers.get(k);
    if (!entry) {
      entry = (async () => {
        const buf = await redis.getBuffer(this.keys.optimizer(k));
        if (!buf) throw new UserError(`run ${this.keys.run}: optimizer ${k} is gone from Redis`);
        const { tensors, meta } = decodeMessage<JsonValue>(buf, `optimizer ${k}`);
        const spec = meta as unknown as StoredSpec;
        const ctx = { seed: 0, baseDir: this.baseDir };
        try {
          if (spec.kind === 'optimizer') return { optimizer: this.registry.create('optimizer', spec.config, ctx, '', spec.name), dispose: () => {} };
          const meta = this.registry.create('meta-optimizer', spec.metaOptimizer, ctx, '', spec.name);
          try {
            meta.setWeights(tensors);
          } catch (e) {
            meta.dispose();
            throw e;
          }
          return { optimizer: meta.optimizer(), dispose: () => meta.dispose() };
        } finally {
          disposeTree(tensors);
        }
      })();
      this.optimizers.set(k, entry);
      entry.catch(() => this.optimizers.delete(k));
    }
    return entry.then((e) => e.optimizer);
  }

  async dispose(): Promise<void> {
    for (const entry of this.optimizers.values()) (await entry.catch(() => null))?.dispose();
    this.optimizers.clear();
    this.built?.dispose();
    this.family?.dispose?.();
  }
}

/**
 * Starts a worker process's share of distributed meta-training: it takes episode shards from the BullMQ queue,
 * rebuilds each run's experiment once (its optimizee family, meta-optimizer and estimator, as `l2l train` builds
 * them), and per truncation waits for the learner's φ, computes its tasks' estimate with the engine's own
 * population (MetaTrainer.openPopulation) and sends it back. A shard taken over after a crash is replayed from
 * the episode's start with the φ the learner published; estimates already delivered are kept, not replaced.
 * It also takes asynchronous training's population jobs (AsyncPopulationSource) and evaluation runs
 * (RedisRunSource), rebuilding for those the family and the optimizer.
 */
export async function startWorker(options: WorkerOptions): Promise<DistributedWorker> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UserError(`--concurrency must be an integer ≥ 1, got ${concurrency}`);
  const lockSeconds = options.lockSeconds ?? 30;
  if (!(lockSeconds > 0)) throw new UserError(`--lock-seconds must be a positive number, got ${lockSeconds}`);
  const redis = await connectRedis(options.redis, 'l2l-worker');
  const runs = new Map<string, Promise<WorkerRun | null>>();

  async function runFor(keys: RunKeys): Promise<WorkerRun | null> {
    let entry = runs.get(keys.run);
    if (!entry) {
      entry = (async () => {
        const text = await redis.get(keys.info);
        if (text === null) return null;
        const info = JSON.parse(text) as RunInfo;
        // One run at a time: a new learner's run replaces an idle older one.
        for (const [id, other] of runs) {
          if (id === keys.run) continue; // this very entry: awaiting it would wait forever
          const r = await other.catch(() => null);
          if (!r || r.active === 0) {
            runs.delete(id);
            await r?.dispose();
          }
        }
        await useBackend(options.backend ?? (info.backend as BackendChoice));
        const baseDir = options.baseDir ?? info.baseDir;
        return new WorkerRun(keys, info, options.registry(info, baseDir), baseDir);
      })();
      runs.set(keys.run, entry);
      // A failed build is not cached: the next job of the run tries again (and fails the same way, visibly).
      entry.catch(() => runs.delete(keys.run));
    }
    return entry;
  }

  async function processShard(job: TakenJob<ShardJob>): Promise<{ what: 'done' | 'skipped'; detail: string }> {
    const d = job.data;
    const keys = new RunKeys(d.prefix, d.run);
    const phiKey = keys.phi(d.epoch, d.episode);
    if (await redis.hexists(phiKey, STOP)) return { what: 'skipped', detail: 'the episode is over' };
    // A shard left in the queue by a learner that died: nothing to build it for.
    if (!(await redis.exists(keys.alive))) return { what: 'skipped', detail: 'the learner is gone' };
    const run = await runFor(keys);
    if (!run) return { what: 'skipped', detail: 'the run is gone' };
    options.onShard?.({ job: d, what: 'start', detail: '' });
    run.active++;
    const blocking = duplicateConnection(redis);
    let population;
    try {
      population = run.trainer().openPopulation(d.epoch, d.episode, d.first, d.end);
    } catch (e) {
      run.active--;
      blocking.disconnect();
      throw e;
    }
    try {
      for (let u = 0; ; u++) {
        const message = await waitPhi(blocking, keys, d, u);
        if (message === STOP) return { what: 'done', detail: `${u} unroll${u === 1 ? '' : 's'}` };
        if (jobs.lost(job.id)) return { what: 'skipped', detail: TAKEN_OVER };
        const { tensors: phi, meta } = decodeMessage<PhiMeta>(message, `φ for unroll ${u + 1}`);
        let estimate;
        try {
          estimate = await population.estimate(phi, meta.length, meta.seed);
        } finally {
          disposeTree(phi);
        }
        let out: Buffer;
        try {
          out = await encodeMessage(estimate.grads, { metaLosses: numbersOut(estimate.metaLosses), losses: numbersOut(population.losses()), configs: [...population.configs] });
        } finally {
          disposeTree(estimate.grads);
        }
        await redis
          .multi()
          .hsetnx(keys.results(d.epoch, d.episode, u), String(d.shard), out)
          .rpush(keys.done(d.epoch, d.episode, u), String(d.shard))
          .exec();
      }
    } finally {
      await population.dispose();
      run.active--;
      blocking.disconnect();
    }
  }

  async function processRun(job: TakenJob<RunJob>): Promise<{ what: 'done' | 'skipped'; detail: string; outcome?: OutcomeJson }> {
    const d = job.data;
    const keys = new RunKeys(d.prefix, d.run);
    if (!(await redis.exists(keys.alive))) return { what: 'skipped', detail: 'the learner is gone' };
    const run = await runFor(keys);
    if (!run) return { what: 'skipped', detail: 'the run is gone' };
    run.active++;
    try {
      const optimizer = await run.optimizer(d.optimizer, redis);
      const outcome = await runStepsAsync(runRequestSteps(run.runFamily(), optimizer, d.request));
      return { what: 'done', detail: `${d.request.steps} steps`, outcome: outcomeOut(outcome) };
    } finally {
      run.active--;
    }
  }

  /**
   * Asynchronous training's population job: the shard's tasks, episode after episode, one truncation per new φ the
   * learner publishes (never twice at one φ), each estimate tagged with its φ's version; an episode whose estimate
   * is not finite ends (the learner drops or skips it) and the next starts. Ends when the learner stops.
   */
  async function processPopulation(job: TakenJob<PopulationJob>): Promise<{ what: 'done' | 'skipped'; detail: string }> {
    const d = job.data;
    const keys = new RunKeys(d.prefix, d.run);
    if (!(await redis.exists(keys.alive))) return { what: 'skipped', detail: 'the learner is gone' };
    const run = await runFor(keys);
    if (!run) return { what: 'skipped', detail: 'the run is gone' };
    const trainer = run.trainer();
    const { steps, unroll } = trainer.options;
    const seed = run.seed;
    run.active++;
    const blocking = duplicateConnection(redis);
    let used = 0;
    let truncations = 0;
    try {
      for (let episode = 0; ; episode++) {
        const population = trainer.openPopulation(0, episode, d.first, d.end);
        try {
          for (let u = 0; u < trainer.unrollsPerEpisode; u++) {
            const latest = await waitNewerPhi(blocking, keys, d.shard, d.run, used);
            if (latest === STOP) return { what: 'done', detail: `${truncations} truncations` };
            if (jobs.lost(job.id)) return { what: 'skipped', detail: TAKEN_OVER };
            const { tensors: phi, meta } = decodeMessage<{ version: number }>(latest, 'the latest φ');
            used = meta.version;
            let estimate;
            try {
              estimate = await population.estimate(phi, Math.min(unroll, steps - u * unroll), deriveSeed(seed, 'async-estimator', d.shard, episode, u));
            } finally {
              disposeTree(phi);
            }
            const finite = estimate.metaLosses.every(Number.isFinite) && population.losses().every(Number.isFinite);
            let out: Buffer;
            try {
              const meta: AsyncEstimateMeta = { version: used, shard: d.shard, metaLosses: numbersOut(estimate.metaLosses), losses: numbersOut(population.losses()), configs: [...population.configs] };
              out = await encodeMessage(estimate.grads, meta);
            } finally {
              disposeTree(estimate.grads);
            }
            await redis.rpush(keys.asyncGrads, out);
            truncations++;
            if (!finite) break;
          }
        } finally {
          await population.dispose();
        }
      }
    } finally {
      run.active--;
      blocking.disconnect();
    }
  }

  /** The latest φ once its version is above `used`, or STOP; throws when the learner is gone. */
  async function waitNewerPhi(blocking: Redis, keys: RunKeys, shard: number, run: string, used: number): Promise<Buffer | typeof STOP> {
    for (;;) {
      if (await redis.exists(keys.asyncStop)) return STOP;
      const buf = await redis.getBuffer(keys.asyncPhi);
      if (buf && decodeVersion(buf) > used) return buf;
      if (!(await redis.exists(keys.alive))) throw new UserError(`the learner of run ${run} is gone (no heartbeat)`);
      await blocking.blpop(keys.asyncWake(shard), 2);
    }
  }

  /** φ for unroll u of the job's episode, or STOP; throws when the learner is gone. */
  async function waitPhi(blocking: Redis, keys: RunKeys, d: ShardJob, u: number): Promise<Buffer | typeof STOP> {
    const phiKey = keys.phi(d.epoch, d.episode);
    for (;;) {
      const buf = await redis.hgetBuffer(phiKey, String(u));
      if (buf) return buf;
      if (await redis.hexists(phiKey, STOP)) return STOP;
      if (!(await redis.exists(keys.alive))) throw new UserError(`the learner of run ${d.run} is gone (no heartbeat)`);
      await blocking.blpop(keys.wake(d.epoch, d.episode, d.shard), 2);
    }
  }

  async function processJob(job: TakenJob): Promise<string | OutcomeJson> {
    if (job.name === 'population') {
      const populationJob = job as TakenJob<PopulationJob>;
      try {
        const { what, detail } = await processPopulation(populationJob);
        return `${what}: ${detail}`;
      } catch (e) {
        options.onPopulation?.({ job: populationJob.data, detail: (e as Error)?.message ?? String(e) });
        throw e;
      }
    }
    if (job.name === 'run') {
      const runJob = job as TakenJob<RunJob>;
      try {
        const { what, detail, outcome } = await processRun(runJob);
        options.onRun?.({ job: runJob.data, what, detail });
        return outcome ?? `${what}: ${detail}`;
      } catch (e) {
        options.onRun?.({ job: runJob.data, what: 'failed', detail: (e as Error)?.message ?? String(e) });
        throw e;
      }
    }
    const shardJob = job as TakenJob<ShardJob>;
    try {
      const { what, detail } = await processShard(shardJob);
      options.onShard?.({ job: shardJob.data, what, detail });
      return `${what}: ${detail}`;
    } catch (e) {
      options.onShard?.({ job: shardJob.data, what: 'failed', detail: (e as Error)?.message ?? String(e) });
      throw e;
    }
  }

  let jobs: QueueThread;
  try {
    jobs = new QueueThread(
      { url: options.redis, queue: options.queue ?? DEFAULT_QUEUE, prefix: options.prefix ?? DEFAULT_PREFIX, concurrency, lockMs: lockSeconds * 1000 },
      processJob,
      options.onFailure,
    );
  } catch (e) {
    redis.disconnect();
    throw e;
  }
  try {
    await jobs.ready();
  } catch (e) {
    await jobs.close();
    redis.disconnect();
    throw e;
  }

  return {
    async close() {
      await jobs.close();
      for (const entry of runs.values()) await (await entry.catch(() => null))?.dispose();
      runs.clear();
      redis.disconnect();
    },
  };
}
