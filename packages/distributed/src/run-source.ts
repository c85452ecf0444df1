import { QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { UserError, type JsonValue, type OptimizerSpec, type RunOutcome, type RunRequest, type RunSource } from '@l2l/core';
import { duplicateConnection } from './redis';
import type { RunJob, StoredSpec } from './protocol';
import { RunSession, type SessionOptions } from './session';
import { encodeMessage, outcomeIn } from './wire';

/**
 * Evaluation and tuning runs as BullMQ jobs on `l2l worker` processes (`l2l eval --redis`): each run is one job,
 * every run of a batch (a tuning grid, an optimizer's evaluation tasks) in flight at once. A worker rebuilds the
 * experiment's optimizee family and the optimizer (from its config, and φ for a learned one) and makes the run
 * this process would make, so the results are the same numbers.
 */
export class RedisRunSource implements RunSource {
  readonly description: string;
  private readonly session: RunSession;
  private events?: Promise<QueueEvents>;
  private eventsConnection?: Redis;
  /** Stored optimizers: a registered one by its config's JSON, a learned one by its spec object (φ). */
  private readonly byConfig = new Map<string, number>();
  private readonly bySpec = new WeakMap<OptimizerSpec, number>();
  private stored = 0;
  private jobs = 0;

  constructor(options: SessionOptions) {
    this.session = new RunSession(options);
    this.description = `runs on workers: one BullMQ job per run over ${options.redis}, queue "${this.session.queueName}"`;
    this.session.onClose(async () => {
      const events = await this.events?.catch(() => undefined);
      await events?.close();
      // BullMQ leaves a connection it was given open.
      this.eventsConnection?.disconnect();
    });
  }

  get run(): string {
    return this.session.run;
  }

  /** Stores an optimizer once; its number. */
  private async store(spec: OptimizerSpec): Promise<number> {
    const key = spec.kind === 'optimizer' ? JSON.stringify(spec.config) : undefined;
    const known = key !== undefined ? this.byConfig.get(key) : this.bySpec.get(spec);
    if (known !== undefined) return known;
    const k = this.stored++;
    if (key !== undefined) this.byConfig.set(key, k);
    else this.bySpec.set(spec, k);
    const meta: StoredSpec = spec.kind === 'optimizer' ? { kind: 'optimizer', name: spec.name, config: spec.config } : { kind: 'learned', name: spec.name, metaOptimizer: spec.metaOptimizer };
    const { redis } = await this.session.connect();
    // Expires with the run's info at the latest (a learner killed with -9 leaves nothing for long).
    await redis.set(this.session.keys.optimizer(k), await encodeMessage(spec.kind === 'learned' ? spec.weights : {}, meta as unknown as JsonValue), 'EX', 3600);
    return k;
  }

  async runAll(runs: ReadonlyArray<{ optimizer: OptimizerSpec; request: RunRequest }>): Promise<RunOutcome[]> {
    if (runs.length === 0) return [];
    const c = await this.session.connect();
    this.events ??= (async () => {
      this.eventsConnection = duplicateConnection(c.redis);
      const events = new QueueEvents(this.session.queueName, { connection: this.eventsConnection, prefix: this.session.keys.prefix });
      events.on('error', () => {});
      await events.waitUntilReady();
      return events;
    })();
    const events = await this.events;
    const ids: number[] = [];
    for (const r of runs) ids.push(await this.store(r.optimizer));
    const jobs = await c.queue.addBulk(
      runs.map((r, i) => {
        const data: RunJob = { run: this.run, prefix: this.session.keys.prefix, optimizer: ids[i]!, request: { ...r.request } };
        return { name: 'run', data, opts: { jobId: `${this.run}-r${this.jobs++}`, attempts: 1, removeOnComplete: { age: 600 }, removeOnFail: 1000 } };
      }),
    );
    const { options } = this.session;
    let settled = 0;
    let lastProgress = Date.now();
    const results = jobs.map((job, i) =>
      job.waitUntilFinished(events).then(
        (value: unknown) => {
          settled++;
          lastProgress = Date.now();
          return outcomeIn(value, `run ${i + 1} of ${runs.length} (${runs[i]!.optimizer.name})`);
        },
        (e: unknown) => {
          const r = runs[i]!;
          throw new UserError(`distributed: a run of ${r.optimizer.name} on ${r.request.split} task ${r.request.taskSeed} failed on a worker: ${(e as Error)?.message ?? String(e)}`);
        },
      ),
    );
    // Until every run is in: a notice while nothing moves, and an error when no worker has taken any for too long.
    let watching = true;
    const watchdog = (async () => {
      let nextNotice = (options.noticeSeconds ?? 10) * 1000;
      const timeout = (options.timeoutSeconds ?? 600) * 1000;
      while (watching) {
        await new Promise((r) => setTimeout(r, 500));
        if (!watching) return;
        const idle = Date.now() - lastProgress;
        if (idle < nextNotice) continue;
        const counts = await c.queue.getJobCounts('waiting', 'active');
        if (idle >= timeout && counts.active === 0) {
          throw new UserError(`distributed: no worker took any of ${runs.length - settled} run(s) in ${Math.round(idle / 1000)} s (are workers running? l2l worker --redis ${options.redis})`);
        }
        nextNotice *= 2;
        options.onNotice?.(`${settled} of ${runs.length} runs done; ${counts.active} running, ${counts.waiting} waiting for a worker (nothing finished for ${Math.round(idle / 1000)} s)`);
      }
    })();
    try {
      return await Promise.race([Promise.all(results), watchdog.then(() => [] as RunOutcome[])]);
    } catch (e) {
      // What no worker has taken is withdrawn; runs in progress finish and are dropped.
      await Promise.all(jobs.map(async (job) => ((await job.getState().catch(() => '')) === 'waiting' ? job.remove().catch(() => {}) : undefined)));
      results.forEach((p) => p.catch(() => {}));
      throw e;
    } finally {
      watching = false;
    }
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
