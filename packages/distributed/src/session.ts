import { randomUUID } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ExperimentConfig } from '@l2l/core';
import { connectRedis, duplicateConnection } from './redis';
import { ALIVE_TTL_S, DEFAULT_PREFIX, DEFAULT_QUEUE, INFO_TTL_S, RunKeys, type RunInfo } from './protocol';

/** What a learner-side source is told: where the workers are and what they rebuild. */
export interface SessionOptions {
  /** redis:// URL of the Redis the workers listen on. */
  redis: string;
  /** The resolved experiment the workers rebuild. */
  experiment: ExperimentConfig;
  /** Directory relative paths and plugins resolve from (workers use it unless given their own). */
  baseDir: string;
  /** The tfjs backend this process runs on (`tf.getBackend()` by default); workers use the same. */
  backend?: string;
  queue?: string;
  prefix?: string;
  /** Seconds of waiting for workers before giving up with an error (default 600). */
  timeoutSeconds?: number;
  /** Seconds of waiting before the first notice of what is waiting (default 10). */
  noticeSeconds?: number;
  /** Called with a notice (work no worker has taken, say) while waiting. */
  onNotice?(message: string): void;
}

export interface Connection {
  redis: Redis;
  /** For BLPOP, which holds its connection while it waits. */
  blocking: Redis;
  queue: Queue;
  queueConnection: Redis;
}

/**
 * A learner's run in Redis: a random id, the run's info (what workers rebuild) and a heartbeat (whose absence
 * tells workers the learner is gone), and the BullMQ queue its jobs go to. Connects on first use.
 */
export class RunSession {
  readonly run = randomUUID();
  readonly keys: RunKeys;
  private connection?: Promise<Connection>;
  private heartbeat?: NodeJS.Timeout;
  private closed = false;
  private readonly cleanups: Array<() => Promise<void>> = [];

  constructor(readonly options: SessionOptions) {
    this.keys = new RunKeys(options.prefix ?? DEFAULT_PREFIX, this.run);
  }

  get queueName(): string {
    return this.options.queue ?? DEFAULT_QUEUE;
  }

  /** Connects, publishes the run and starts the heartbeat, once. */
  connect(): Promise<Connection> {
    if (this.closed) return Promise.reject(new Error('the distributed session is closed'));
    this.connection ??= (async () => {
      const redis = await connectRedis(this.options.redis, `l2l-learner-${this.run}`);
      const blocking = duplicateConnection(redis);
      const queueConnection = duplicateConnection(redis);
      const queue = new Queue(this.queueName, { connection: queueConnection, prefix: this.keys.prefix });
      queue.on('error', () => {});
      // Job.waitUntilFinished adds a 'closing' listener to the queue per waiting job (removed when it ends):
      // hundreds of evaluation runs wait at once.
      queue.setMaxListeners(0);
      const info: RunInfo = {
        experiment: this.options.experiment as RunInfo['experiment'],
        baseDir: this.options.baseDir,
        backend: this.options.backend ?? tf.getBackend(),
      };
      // The info outlives a learner killed with -9 by at most INFO_TTL_S; the heartbeat keeps both alive.
      await redis.set(this.keys.info, JSON.stringify(info), 'EX', INFO_TTL_S);
      await redis.set(this.keys.alive, '1', 'EX', ALIVE_TTL_S);
      const beat = () => redis.multi().set(this.keys.alive, '1', 'EX', ALIVE_TTL_S).expire(this.keys.info, INFO_TTL_S).exec();
      this.heartbeat = setInterval(() => void beat().catch(() => {}), (ALIVE_TTL_S * 1000) / 3);
      this.heartbeat.unref();
      return { redis, blocking, queue, queueConnection };
    })();
    return this.connection;
  }

  /** Runs `cleanup` when the session closes (before its connections go). */
  onClose(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (!this.connection) return;
    const c = await this.connection.catch(() => null);
    if (!c) return;
    for (const cleanup of this.cleanups) await cleanup().catch(() => {});
    // Workers holding a job of this run see it gone and let go.
    await c.redis.del(this.keys.alive, this.keys.info).catch(() => {});
    await c.queue.close().catch(() => {});
    // BullMQ leaves a connection it was given open.
    for (const r of [c.queueConnection, c.blocking, c.redis]) r.disconnect();
  }
}
