import * as path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { DEFAULT_QUEUE, startWorker } from '@l2l/distributed';
import { UserError, type BackendChoice } from '@l2l/core';
import type { CliContext } from '../context';
import { backendOption, positiveInt } from '../options';

interface WorkerOptions {
  redis: string;
  queue: string;
  concurrency: number;
  baseDir?: string;
  lockSeconds: number;
  backend?: BackendChoice;
  trustPlugins?: boolean;
}

function positiveSeconds(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(value) || !(n > 0)) throw new InvalidArgumentError('must be a positive number of seconds');
  return n;
}

/** `l2l worker --redis <url>`: holds shards of the episodes of distributed runs (`l2l train --redis`). */
export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .summary('hold shards of distributed meta-training runs and evaluation runs (l2l train/eval --redis)')
    .description(
      'Take episode shards of `l2l train --redis` runs from Redis and compute their meta-gradient estimates: the run\'s ' +
        'experiment is rebuilt here (its plugins resolved from the learner\'s directory or --base-dir), each truncation ' +
        'runs at the φ the learner publishes, and the estimate goes back to it. Start as many workers, on as many ' +
        'machines, as there are shards to hold; a worker that dies has its shards taken over by another after ' +
        '--lock-seconds. It also takes the runs of `l2l eval --redis` (one tuning or evaluation run per job). Runs until ' +
        'Ctrl-C or SIGTERM, which let the current truncation or run finish.',
    )
    .requiredOption('--redis <url>', 'Redis of the learner, redis://host:port')
    .option('--queue <name>', 'BullMQ queue the learner puts shards on', DEFAULT_QUEUE)
    .option('--concurrency <n>', 'shards this process holds at once (they take turns on its thread)', positiveInt, 1)
    .option('--base-dir <dir>', "directory the experiment's relative paths and plugins resolve from (default: the learner's)")
    .option('--lock-seconds <s>', 'how long a shard or run of a dead worker waits before another takes it over (a live worker renews its locks from a thread of its own, also during a long truncation)', positiveSeconds, 30)
    .option('--trust-plugins', "load the plugins a run's experiment lists (plugins are code, and whoever can write to the Redis chooses them); without it such runs fail on this worker")
    .addOption(backendOption())
    .action(async (opts: WorkerOptions) => {
      const runIds = new Set<string>();
      // The queue thread failing ends the process (with code 1), as a failure before the wait below would.
      let failed: (e: Error) => void = () => {};
      const failure = new Promise<never>((_, reject) => (failed = reject));
      failure.catch(() => {}); // awaited below; a failure before that is not an unhandled rejection
      const worker = await startWorker({
        onFailure: (message) => failed(new UserError(`worker: stopped taking jobs: its queue thread failed (${message})`)),
        redis: opts.redis,
        queue: opts.queue,
        concurrency: opts.concurrency,
        lockSeconds: opts.lockSeconds,
        ...(opts.baseDir && { baseDir: path.resolve(ctx.cwd, opts.baseDir) }),
        ...(opts.backend && { backend: opts.backend }),
        registry: (info, baseDir) => {
          const plugins = info.experiment.plugins ?? [];
          if (plugins.length > 0 && !opts.trustPlugins) {
            const names = plugins.map((p) => (typeof p === 'string' ? p : p[0])).join(', ');
            throw new UserError(`the run's experiment lists plugins (${names}): this worker loads plugins only with --trust-plugins (plugins are code, chosen by whoever writes to the Redis)`);
          }
          return ctx.workspaceFor(plugins, baseDir, "the run's experiment").registry;
        },
        onRun: ({ job, what, detail }) => {
          // Runs are many and short: a line for a run id's first, and for every failure.
          if (what === 'failed') ctx.err(`run ${job.run.slice(0, 8)}: a run of optimizer ${job.optimizer} on ${job.request.split} task ${job.request.taskSeed} failed: ${detail}`);
          else if (!runIds.has(job.run)) {
            runIds.add(job.run);
            ctx.out(`run ${job.run.slice(0, 8)}: evaluation runs (${what === 'done' ? 'the first done' : `the first ${what}: ${detail}`})`);
          }
        },
        onPopulation: ({ job, detail }) => ctx.err(`run ${job.run.slice(0, 8)} asynchronous shard ${job.shard}: failed: ${detail}`),
        onShard: ({ job, what, detail }) => {
          const tasks = job.end - job.first === 1 ? `task ${job.first}` : `tasks ${job.first}..${job.end - 1}`;
          const line = `run ${job.run.slice(0, 8)} epoch ${job.epoch + 1} episode ${job.episode + 1} shard ${job.shard} (${tasks}): ${what === 'start' ? 'started' : `${what}: ${detail}`}`;
          if (what === 'failed') ctx.err(line);
          else ctx.out(line);
        },
      });
      ctx.out(`worker: waiting for shards and runs on ${opts.redis}, queue "${opts.queue}", ${opts.concurrency} at a time (Ctrl-C stops)`);
      let stop = (): void => {};
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      try {
        await Promise.race([stopped, failure]);
        ctx.out('worker: stopping after the current truncation');
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await worker.close();
      }
    });
}
