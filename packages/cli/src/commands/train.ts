import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { describeBackend, preflightExperiment, preflightNote, trainExperiment, useBackend, UserError, type BackendChoice, type EpochReport } from '@l2l/core';
import { AsyncPopulationSource, checkRedisUrl, DEFAULT_QUEUE, RedisPopulationSource } from '@l2l/distributed';
import type { CliContext } from '../context';
import { backendOption, nonNegativeInt, positiveInt } from '../options';
import { prepareLockedOutput } from '../output';
import { createProgress, formatDuration, formatLoss, noProgress, type Progress } from '../progress';

interface TrainOptions {
  out: string;
  redis?: string;
  shards?: number;
  queue?: string;
  async?: boolean;
  staleness?: number;
  gradientsPerStep?: number;
  resume?: boolean;
  force?: boolean;
  backend?: BackendChoice;
}

/** `l2l train <config> --out <dir>`: meta-trains the experiment's learned optimizer. */
export function registerTrain(program: Command, ctx: CliContext): void {
  program
    .command('train')
    .summary('meta-train the learned optimizer of an experiment')
    .description(
      'Meta-train the experiment\'s metaOptimizer on its optimizee family with training.estimator (truncated backpropagation through time by default; es, pes). ' +
        'Writes a checkpoint directory: experiment.json, log.csv (one row per epoch), latest/ after every epoch and best/ ' +
        'at every validation improvement, each written atomically. A progress bar shows epoch, meta-loss and ETA on a ' +
        'terminal; otherwise one line per epoch is printed.',
    )
    .argument('<config>', 'experiment config (JSON)')
    .requiredOption('-o, --out <dir>', 'checkpoint directory')
    .option('--resume', 'continue the run in --out from its latest/ checkpoint (training.epochs may be raised)')
    .option('--force', 'discard a previous run in --out and start afresh (only a directory l2l wrote: one holding anything else is refused)')
    .option('--redis <url>', 'distribute each episode\'s tasks (training.tasksPerStep) over `l2l worker` processes through this Redis (redis://host:port)')
    .option('--shards <n>', 'with --redis: shards per episode (default: one per task, which gives the weights of a run in one process bit for bit)', positiveInt)
    .option('--queue <name>', 'with --redis: the BullMQ queue workers listen on', DEFAULT_QUEUE)
    .option('--async', 'with --redis: asynchronous training: each shard trains its tasks episode after episode on a worker and the learner applies estimates as they come (no shard waits for another; not reproducible bit for bit)')
    .option('--staleness <n>', 'with --async: drop estimates computed at a φ more than n outer steps old (default: the number of shards)', nonNegativeInt)
    .option('--gradients-per-step <n>', 'with --async: estimates averaged per outer step (default 1)', positiveInt)
    .addOption(backendOption())
    .addHelpText(
      'after',
      ['', 'Examples:', '  $ l2l train experiments/quadratic.json --out runs/quadratic', '  $ l2l train experiments/quadratic.json --out runs/quadratic --resume'].join('\n'),
    )
    .action(async (file: string, opts: TrainOptions) => {
      if (opts.resume && opts.force) throw new UserError('--resume and --force exclude each other');
      if (!opts.redis && opts.shards !== undefined) throw new UserError('--shards needs --redis (the Redis the workers listen on)');
      if (!opts.redis && opts.async) throw new UserError('--async needs --redis (the Redis the workers listen on)');
      if (!opts.async && (opts.staleness !== undefined || opts.gradientsPerStep !== undefined)) throw new UserError('--staleness and --gradients-per-step need --async');
      if (opts.redis) checkRedisUrl(opts.redis);
      const ws = ctx.loadExperiment(file);
      const experiment = ws.experiment;
      preflightExperiment(experiment, ws.registry, file, 'train');
      const note = preflightNote(experiment, ws.registry, 'train');
      if (note) ctx.err(`warning: ${file}: ${note}`);
      // Checked (and a previous run discarded, only one l2l wrote) before any work.
      const requested = path.resolve(ctx.cwd, opts.out);
      // Locked too, before --force removes anything: a second run on this directory is refused while this one runs.
      const { dir: outDir, release } = prepareLockedOutput(requested, 'train', { shown: opts.out, resume: opts.resume, force: opts.force, onLost: (m) => ctx.err(`warning: ${m}`) });
      try {
        // A run killed before it wrote its experiment.json (or never started) has nothing to resume: it starts over.
        const startOver = opts.resume === true && !fs.existsSync(path.join(outDir, 'experiment.json'));
        if (startOver) ctx.out(`nothing to resume in ${opts.out} yet: starting from epoch 1`);
        const backend = await useBackend(opts.backend ?? experiment.backend);
        ctx.out(describeBackend(backend));
        const t = experiment.training;
        let progress: Progress = noProgress;
        let started = Date.now();
        let firstEpoch = 0;
        let unrollsPerEpoch = 1;
        const onEpoch = (r: EpochReport) => {
          const elapsed = (Date.now() - started) / 1000;
          const eta = (elapsed / (r.epoch - firstEpoch)) * (t.epochs - r.epoch);
          const validation = r.validationLoss === undefined ? '' : `  validation ${formatLoss(r.validationLoss)}${r.best ? ' (best)' : ''}`;
          const skipped = r.skipped ? `  skipped ${r.skipped}` : '';
          const lr = r.learningRateFactor === undefined ? '' : `  lr ×${r.learningRateFactor.toPrecision(3)}`;
          progress.line(
            `epoch ${r.epoch}/${t.epochs}  meta-loss ${formatLoss(r.metaLoss)}  final loss ${formatLoss(r.finalLoss)}${validation}${skipped}${lr}  ${r.seconds.toFixed(1)}s  ETA ${formatDuration(eta)}`,
          );
        };
        const session = opts.redis && {
          redis: opts.redis,
          experiment,
          baseDir: ws.baseDir,
          backend: backend.name,
          ...(opts.shards !== undefined && { shards: opts.shards }),
          ...(opts.queue !== undefined && { queue: opts.queue }),
          onNotice: (m: string) => progress.line(`notice: ${m}`),
        };
        const population = !session
          ? undefined
          : opts.async
            ? new AsyncPopulationSource({ ...session, ...(opts.staleness !== undefined && { staleness: opts.staleness }), ...(opts.gradientsPerStep !== undefined && { gradientsPerStep: opts.gradientsPerStep }) })
            : new RedisPopulationSource(session);
        const result = await trainExperiment(experiment, ws.registry, {
          population,
          outDir,
          resume: opts.resume && !startOver,
          baseDir: ws.baseDir,
          where: file,
          events: {
            onStart: (info) => {
              firstEpoch = info.startEpoch;
              unrollsPerEpoch = info.unrollsPerEpoch;
              started = Date.now();
              ctx.out(
                `meta-training ${experiment.metaOptimizer?.type} on ${experiment.optimizee.type}: epochs ${info.startEpoch + 1}..${t.epochs}, ` +
                  `${t.episodesPerEpoch} episodes × ${t.steps} steps (unroll ${t.unroll}) per epoch, seed ${experiment.seed}`,
              );
              ctx.out(info.metaGradient);
              if (info.schedule) ctx.out(`learning-rate schedule: ${info.schedule}`);
              progress = createProgress(ctx, (t.epochs - info.startEpoch) * unrollsPerEpoch, 'epoch {epoch}/{epochs} |{bar}| {percentage}% | meta-loss {metaLoss} | ETA {eta_formatted}');
            },
            onUnroll: (e) =>
              progress.update((e.epoch - firstEpoch) * unrollsPerEpoch + e.done, { epoch: e.epoch + 1, epochs: t.epochs, metaLoss: formatLoss(e.metaLoss) }),
            onEpoch,
            onSkip: (message) => progress.line(`warning: ${message}`),
          },
        });
        progress.stop();
        const best = result.bestEpoch === null ? 'no finite validation loss' : `best validation ${formatLoss(result.bestValidation ?? NaN)} at epoch ${result.bestEpoch}`;
        ctx.out(`done: ${result.epochs} epochs; ${best}; ${result.skipped} episodes skipped; checkpoint in ${path.relative(ctx.cwd, outDir) || '.'}`);
      } finally {
        release();
      }
    });
}
