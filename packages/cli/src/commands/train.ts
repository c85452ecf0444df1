import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { describeBackend, preflightExperiment, trainExperiment, useBackend, UserError, type BackendChoice, type EpochReport } from '@l2l/core';
import type { CliContext } from '../context';
import { backendOption } from '../options';
import { prepareOutput } from '../output';
import { createProgress, formatDuration, formatLoss, noProgress, type Progress } from '../progress';

interface TrainOptions {
  out: string;
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
      'Meta-train the experiment\'s metaOptimizer on its optimizee family by truncated backpropagation through time. ' +
        'Writes a checkpoint directory: experiment.json, log.csv (one row per epoch), latest/ after every epoch and best/ ' +
        'at every validation improvement, each written atomically. A progress bar shows epoch, meta-loss and ETA on a ' +
        'terminal; otherwise one line per epoch is printed.',
    )
    .argument('<config>', 'experiment config (JSON)')
    .requiredOption('-o, --out <dir>', 'checkpoint directory')
    .option('--resume', 'continue the run in --out from its latest/ checkpoint (training.epochs may be raised)')
    .option('--force', 'discard a previous run in --out and start afresh (only a directory l2l wrote: one holding anything else is refused)')
    .addOption(backendOption())
    .addHelpText(
      'after',
      ['', 'Examples:', '  $ l2l train experiments/quadratic.json --out runs/quadratic', '  $ l2l train experiments/quadratic.json --out runs/quadratic --resume'].join('\n'),
    )
    .action(async (file: string, opts: TrainOptions) => {
      if (opts.resume && opts.force) throw new UserError('--resume and --force exclude each other');
      const ws = ctx.loadExperiment(file);
      const experiment = ws.experiment;
      preflightExperiment(experiment, ws.registry, file, 'train');
      // Checked (and a previous run discarded, only one l2l wrote) before any work.
      const requested = path.resolve(ctx.cwd, opts.out);
      const outDir = prepareOutput(requested, 'train', { shown: opts.out, resume: opts.resume, force: opts.force });
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
        progress.line(
          `epoch ${r.epoch}/${t.epochs}  meta-loss ${formatLoss(r.metaLoss)}  final loss ${formatLoss(r.finalLoss)}${validation}${skipped}  ${r.seconds.toFixed(1)}s  ETA ${formatDuration(eta)}`,
        );
      };
      const result = await trainExperiment(experiment, ws.registry, {
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
    });
}
