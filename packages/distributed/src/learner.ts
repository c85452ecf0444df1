import {
  addInto,
  disposeTree,
  scaleInPlace,
  UserError,
  type GradientEstimate,
  type NamedTensors,
  type Population,
  type PopulationSource,
  type TaskConfig,
} from '@l2l/core';
import { EPISODE_TTL_S, RunKeys, shardJobId, shardRange, STOP, type EstimateMeta, type ShardJob } from './protocol';
import { RunSession, type Connection, type SessionOptions } from './session';
import { decodeMessage, encodeMessage, numbersIn } from './wire';

export interface LearnerOptions extends SessionOptions {
  /** Shards per episode, each one BullMQ job; default: one per task (the estimate is then bit-identical). */
  shards?: number;
}

/**
 * The learner's side of distributed meta-training: each episode's tasks are split into shards, one BullMQ job
 * each, which `startWorker` processes hold; per truncation the learner publishes φ and collects each shard's
 * estimate, and MetaTrainer applies their average as it would its own. With one task per shard (the default)
 * the average is made as the built-in estimators make it, so a run gives bit for bit the weights of the same
 * run in one process.
 */
export class RedisPopulationSource implements PopulationSource {
  readonly description: string;
  private readonly session: RunSession;
  private readonly tasks: number;
  private readonly shards: number;

  constructor(private readonly options: LearnerOptions) {
    this.tasks = options.experiment.training.tasksPerStep ?? 1;
    const shards = options.shards ?? this.tasks;
    if (!Number.isInteger(shards) || shards < 1) throw new UserError(`--shards must be an integer ≥ 1, got ${shards}`);
    if (shards > this.tasks) {
      throw new UserError(`--shards (${shards}) must not exceed training.tasksPerStep (${this.tasks}): a shard holds at least one task`);
    }
    this.shards = shards;
    this.session = new RunSession(options);
    const per = this.tasks === shards ? 'one task each' : `${this.tasks} tasks in all`;
    this.description = `tasks on workers: ${shards} shard${shards === 1 ? '' : 's'} (${per}) per episode, held at once by \`l2l worker\` slots, over ${options.redis}, queue "${this.session.queueName}"`;
  }

  /** The run id workers see (job data, log lines). */
  get run(): string {
    return this.session.run;
  }

  async open(epoch: number, episode: number): Promise<Population> {
    const c = await this.session.connect();
    const jobs = Array.from({ length: this.shards }, (_, shard) => {
      const [first, end] = shardRange(this.tasks, this.shards, shard);
      const data: ShardJob = { run: this.run, prefix: this.session.keys.prefix, epoch, episode, shard, first, end };
      return { name: 'episode-shard', data, opts: { jobId: shardJobId(this.run, epoch, episode, shard), attempts: 1, removeOnComplete: true, removeOnFail: 1000 } };
    });
    await c.queue.addBulk(jobs);
    return new RemotePopulation(this, c, epoch, episode);
  }

  /** What RemotePopulation reads of its source. */
  get setup(): { keys: RunKeys; tasks: number; shards: number; options: LearnerOptions } {
    return { keys: this.session.keys, tasks: this.tasks, shards: this.shards, options: this.options };
  }

  close(): Promise<void> {
    return this.session.close();
  }
}

/** An episode whose shards are held by workers. */
class RemotePopulation implements Population {
  /** The tasks' configs as the workers sampled them (sent with every estimate). */
  configs: readonly TaskConfig[] = [];
  private unroll = 0;
  private last: number[];
  /** Shards that have sent an estimate: the others may still wait in the queue when the episode ends early. */
  private readonly delivered = new Set<number>();
  private disposed = false;

  constructor(
    private readonly source: RedisPopulationSource,
    private readonly c: Connection,
    private readonly epoch: number,
    private readonly episode: number,
  ) {
    this.last = new Array(source.setup.tasks).fill(NaN);
  }

  async estimate(phi: NamedTensors, length: number, seed: number): Promise<GradientEstimate> {
    const { keys, shards, tasks } = this.source.setup;
    const u = this.unroll++;
    const message = await encodeMessage(phi, { length, seed });
    const tx = this.c.redis.multi().hset(keys.phi(this.epoch, this.episode), String(u), message);
    for (let s = 0; s < shards; s++) tx.rpush(keys.wake(this.epoch, this.episode, s), String(u));
    await tx.exec();
    const parts = await this.collect(u);
    // The built-in estimators' average, with their own addInto and scaleInPlace: Σ over tasks in order, then × 1/n.
    const sum: NamedTensors = {};
    const metaLosses: number[] = [];
    const losses: number[] = [];
    const configs: TaskConfig[] = [];
    try {
      for (let s = 0; s < shards; s++) {
        const { tensors, meta } = decodeMessage<EstimateMeta>(parts[s]!, `shard ${s}'s estimate for unroll ${u + 1}`);
        const [first, end] = shardRange(tasks, shards, s);
        if (meta.metaLosses.length !== end - first || meta.losses.length !== end - first || meta.configs.length !== end - first) {
          disposeTree(tensors);
          throw new Error(`shard ${s} sent ${meta.metaLosses.length} meta-losses for ${end - first} tasks`);
        }
        metaLosses.push(...numbersIn(meta.metaLosses, `shard ${s}'s meta-losses`));
        losses.push(...numbersIn(meta.losses, `shard ${s}'s losses`));
        configs.push(...meta.configs);
        // A shard's estimate is the mean of its tasks: it counts n_s times (scaleInPlace leaves n_s = 1 as it is).
        scaleInPlace(tensors, end - first);
        addInto(sum, tensors);
      }
      scaleInPlace(sum, 1 / tasks);
    } catch (e) {
      disposeTree(sum);
      throw e;
    }
    this.last = losses;
    this.configs = configs;
    return { grads: sum, metaLosses };
  }

  /** Waits for every shard's estimate of unroll u (raw messages by shard). */
  private async collect(u: number): Promise<Buffer[]> {
    const { keys, shards, options } = this.source.setup;
    const got = new Map<number, Buffer>();
    const started = Date.now();
    const timeout = (options.timeoutSeconds ?? 600) * 1000;
    let nextNotice = (options.noticeSeconds ?? 10) * 1000;
    const doneKey = keys.done(this.epoch, this.episode, u);
    while (got.size < shards) {
      const popped = await this.c.blocking.blpop(doneKey, 1);
      if (popped) {
        const s = Number(popped[1]);
        if (!got.has(s)) {
          const buf = await this.c.redis.hgetBuffer(keys.results(this.epoch, this.episode, u), String(s));
          if (buf) {
            got.set(s, buf);
            this.delivered.add(s);
          }
        }
        continue;
      }
      const missing = Array.from({ length: shards }, (_, s) => s).filter((s) => !got.has(s));
      const states = await Promise.all(missing.map(async (s) => [s, await this.c.queue.getJob(shardJobId(this.source.run, this.epoch, this.episode, s))] as const));
      for (const [s, job] of states) {
        if (job && (await job.getState()) === 'failed') {
          throw new UserError(`distributed: shard ${s} of epoch ${this.epoch + 1}, episode ${this.episode + 1} failed on a worker: ${job.failedReason}`);
        }
      }
      const waited = Date.now() - started;
      if (waited >= timeout) {
        throw new UserError(`distributed: no estimate from shard(s) ${missing.join(', ')} for unroll ${u + 1} of epoch ${this.epoch + 1}, episode ${this.episode + 1} in ${Math.round(waited / 1000)} s (are workers running? l2l worker --redis ${options.redis})`);
      }
      if (waited >= nextNotice) {
        nextNotice *= 2;
        const by = await Promise.all(states.map(async ([s, job]) => [s, job ? await job.getState() : 'gone'] as const));
        const queued = by.filter(([, state]) => state === 'waiting' || state === 'prioritized').map(([s]) => s);
        const where = `unroll ${u + 1}, epoch ${this.epoch + 1}, episode ${this.episode + 1}`;
        const message =
          queued.length > 0 && queued.length < shards
            ? `shard(s) ${queued.join(', ')} wait for a worker while the others hold theirs: all ${shards} shards of an episode are held at once, so start more \`l2l worker --redis ${options.redis}\` processes or give them a larger --concurrency (waited ${Math.round(waited / 1000)} s, ${where})`
            : `waited ${Math.round(waited / 1000)} s for shard(s) ${by.map(([s, state]) => `${s} (${state})`).join(', ')} (${where}); start workers with: l2l worker --redis ${options.redis}`;
        options.onNotice?.(message);
      }
    }
    return Array.from({ length: shards }, (_, s) => got.get(s)!);
  }

  losses(): number[] {
    return this.last;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const { keys, shards } = this.source.setup;
    const tx = this.c.redis.multi().hset(keys.phi(this.epoch, this.episode), STOP, '1').expire(keys.phi(this.epoch, this.episode), EPISODE_TTL_S);
    for (let s = 0; s < shards; s++) tx.rpush(keys.wake(this.epoch, this.episode, s), STOP).expire(keys.wake(this.epoch, this.episode, s), EPISODE_TTL_S);
    for (let u = 0; u < this.unroll; u++) {
      tx.expire(keys.results(this.epoch, this.episode, u), EPISODE_TTL_S).del(keys.done(this.epoch, this.episode, u));
    }
    await tx.exec().catch(() => {});
    // An episode cut short (an error, a timeout) may leave shards no worker took: take them off the queue.
    for (let s = 0; s < shards; s++) {
      if (this.delivered.has(s)) continue;
      const job = await this.c.queue.getJob(shardJobId(this.source.run, this.epoch, this.episode, s)).catch(() => undefined);
      if (job && (await job.getState().catch(() => '')) === 'waiting') await job.remove().catch(() => {});
    }
  }
}
