import { addInto, disposeTree, scaleInPlace, UserError, type GradientEstimate, type NamedTensors, type Population, type PopulationSource, type TaskConfig } from '@l2l/core';
import { shardRange, type AsyncEstimateMeta, type PopulationJob } from './protocol';
import { RunSession, type Connection, type SessionOptions } from './session';
import { decodeMessage, encodeMessage, numbersIn } from './wire';

export interface AsyncLearnerOptions extends SessionOptions {
  /** Population jobs (each a worker slot for the whole run, its share of training.tasksPerStep tasks); default: one per task. */
  shards?: number;
  /** Estimates averaged per outer step; default 1 (each is applied as it arrives). */
  gradientsPerStep?: number;
  /** Estimates computed at a φ more than this many outer steps old are dropped; default: the number of shards. */
  staleness?: number;
}

/** How the estimates applied so far were: their staleness (outer steps between their φ and the φ they updated). */
export interface AsyncStats {
  applied: number;
  dropped: number;
  /** applied estimates by staleness 0, 1, 2, ... */
  byStaleness: number[];
}

/**
 * Asynchronous distributed meta-training (after learned_optimization's gradient workers): each shard is a BullMQ
 * job that trains its tasks episode after episode on a worker, always at the latest φ it has, and sends an
 * estimate per truncation tagged with that φ's version; the learner applies estimates as they come
 * (`gradientsPerStep` at a time), dropping any computed at a φ more than `staleness` outer steps old. No shard
 * waits for another, so a slow or dead worker slows nobody; the price is that the result depends on timing (not
 * reproducible bit for bit, unlike RedisPopulationSource) and that φ moves while a truncation runs. Workers' tasks
 * come from the run's seeds (shard s holds tasks [first, end) of each of its episodes, episode after episode).
 */
export class AsyncPopulationSource implements PopulationSource {
  readonly description: string;
  private readonly session: RunSession;
  private readonly tasks: number;
  private readonly shards: number;
  private readonly perStep: number;
  private readonly staleness: number;
  private started = false;
  private version = 0;
  private last: number[] = [];
  private lastConfigs: TaskConfig[] = [];
  readonly stats: AsyncStats = { applied: 0, dropped: 0, byStaleness: [] };

  constructor(options: AsyncLearnerOptions) {
    this.tasks = options.experiment.training.tasksPerStep ?? 1;
    const shards = options.shards ?? this.tasks;
    if (!Number.isInteger(shards) || shards < 1 || shards > this.tasks) {
      throw new UserError(`--shards must be an integer from 1 to training.tasksPerStep (${this.tasks}), got ${shards}`);
    }
    this.shards = shards;
    this.perStep = options.gradientsPerStep ?? 1;
    if (!Number.isInteger(this.perStep) || this.perStep < 1) throw new UserError(`--gradients-per-step must be an integer ≥ 1, got ${this.perStep}`);
    this.staleness = options.staleness ?? shards;
    if (!Number.isInteger(this.staleness) || this.staleness < 0) throw new UserError(`--staleness must be an integer ≥ 0, got ${this.staleness}`);
    this.session = new RunSession(options);
    this.description =
      `asynchronous: ${shards} population job${shards === 1 ? '' : 's'} on workers, ${this.perStep} estimate${this.perStep === 1 ? '' : 's'} per outer step, ` +
      `staleness ≤ ${this.staleness}, over ${options.redis}, queue "${this.session.queueName}" (not reproducible bit for bit)`;
  }

  get run(): string {
    return this.session.run;
  }

  /** Every episode of the learner shares the workers' running populations: opening one starts them the first time. */
  async open(): Promise<Population> {
    const c = await this.session.connect();
    if (!this.started) {
      this.started = true;
      const jobs = Array.from({ length: this.shards }, (_, shard) => {
        const [first, end] = shardRange(this.tasks, this.shards, shard);
        const data: PopulationJob = { run: this.run, prefix: this.session.keys.prefix, shard, first, end };
        return { name: 'population', data, opts: { jobId: `${this.run}-p${shard}`, attempts: 1, removeOnComplete: true, removeOnFail: 1000 } };
      });
      await c.queue.addBulk(jobs);
    }
    const configs = () => this.lastConfigs;
    return {
      get configs() {
        return configs();
      },
      estimate: (phi, _length, _seed) => this.step(c, phi),
      losses: () => this.last,
      dispose: () => {},
    } satisfies Population;
  }

  /** One outer step: publishes φ as the next version, then averages the next `gradientsPerStep` fresh estimates. */
  private async step(c: Connection, phi: NamedTensors): Promise<GradientEstimate> {
    const { keys } = this.session;
    const version = ++this.version;
    const tx = c.redis.multi().set(keys.asyncPhi, await encodeMessage(phi, { version }));
    for (let s = 0; s < this.shards; s++) tx.rpush(keys.asyncWake(s), String(version)).ltrim(keys.asyncWake(s), -4, -1);
    await tx.exec();
    const sum: NamedTensors = {};
    const metaLosses: number[] = [];
    const losses: number[] = [];
    const configs: TaskConfig[] = [];
    let weight = 0;
    try {
      for (let got = 0; got < this.perStep; ) {
        const buf = await this.next(c, version);
        const { tensors, meta } = decodeMessage<AsyncEstimateMeta>(buf, 'an asynchronous estimate');
        const age = version - meta.version;
        if (age > this.staleness) {
          this.stats.dropped++;
          disposeTree(tensors);
          continue;
        }
        got++;
        this.stats.applied++;
        this.stats.byStaleness[age] = (this.stats.byStaleness[age] ?? 0) + 1;
        const n = meta.metaLosses.length;
        // Weighted by its tasks, as the synchronous learner (and the estimators) average.
        scaleInPlace(tensors, n);
        addInto(sum, tensors);
        weight += n;
        metaLosses.push(...numbersIn(meta.metaLosses, 'meta-losses'));
        losses.push(...numbersIn(meta.losses, 'losses'));
        configs.push(...meta.configs);
      }
      scaleInPlace(sum, 1 / weight);
    } catch (e) {
      disposeTree(sum);
      throw e;
    }
    this.last = losses;
    this.lastConfigs = configs;
    return { grads: sum, metaLosses };
  }

  /** The next estimate in the list; notices while none comes, an error after timeoutSeconds or when a job failed. */
  private async next(c: Connection, version: number): Promise<Buffer> {
    const { options, keys } = this.session;
    const started = Date.now();
    let nextNotice = (options.noticeSeconds ?? 10) * 1000;
    for (;;) {
      const popped = await c.blocking.blpopBuffer(keys.asyncGrads, 1);
      if (popped) return popped[1];
      const waited = Date.now() - started;
      const states = await Promise.all(Array.from({ length: this.shards }, async (_, s) => (await c.queue.getJob(`${this.run}-p${s}`))?.getState() ?? 'gone'));
      if (states.every((st) => st === 'failed' || st === 'gone')) {
        const job = await c.queue.getJob(`${this.run}-p0`);
        throw new UserError(`distributed: every population job failed on its worker${job?.failedReason ? `: ${job.failedReason}` : ''}`);
      }
      if (waited >= (options.timeoutSeconds ?? 600) * 1000) {
        throw new UserError(`distributed: no estimate for outer step ${version} in ${Math.round(waited / 1000)} s (are workers running? l2l worker --redis ${options.redis})`);
      }
      if (waited >= nextNotice) {
        nextNotice *= 2;
        options.onNotice?.(`waited ${Math.round(waited / 1000)} s for an estimate (population jobs: ${states.map((st, s) => `${s} ${st}`).join(', ')}); start workers with: l2l worker --redis ${options.redis}`);
      }
    }
  }

  async close(): Promise<void> {
    if (this.started) {
      const c = await this.session.connect().catch(() => null);
      if (c) {
        const { keys } = this.session;
        const tx = c.redis.multi().set(keys.asyncStop, '1', 'EX', 3600).del(keys.asyncGrads);
        for (let s = 0; s < this.shards; s++) tx.rpush(keys.asyncWake(s), 'stop').expire(keys.asyncWake(s), 600);
        await tx.exec().catch(() => {});
      }
    }
    await this.session.close();
  }
}
