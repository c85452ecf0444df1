import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import { comparisonSentences, comparisonTable, describeBackend, evaluateExperimentAsync, preflightExperiment, preflightNote, resultsLegend, resultsTable, useBackend, writeEvaluation, type BackendChoice } from '@l2l/core';
import type { CliContext } from '../context';
import { resolveCheckpoint } from '@l2l/pretrained';
import { backendOption, positiveInt } from '../options';
import { checkRedisUrl, DEFAULT_QUEUE, RedisRunSource } from '@l2l/distributed';
import { prepareLockedOutput } from '../output';
import { lossCurvesSvg } from '../report/plot';

interface EvalOptions {
  optimizer?: string[];
  out: string;
  steps?: number;
  tasks?: number;
  threads?: number;
  split?: 'test' | 'validation';
  backend?: BackendChoice;
  redis?: string;
  queue: string;
}

/** `l2l eval <config> --optimizer <checkpoint> --out <dir>`: learned optimizer vs tuned baselines. */
export function registerEval(program: Command, ctx: CliContext): void {
  program
    .command('eval')
    .summary('evaluate a learned optimizer against tuned baselines on held-out tasks')
    .description(
      'Run the learned optimizer of a checkpoint and the experiment\'s baselines (learning rates tuned by a grid on ' +
        'training tasks) on the same test-split tasks, seeds and step count. Writes results.json (per optimizer: per-step ' +
        'mean and std of the loss, per-task final losses and metrics, summaries; paired comparisons of each learned ' +
        'optimizer with each baseline with 95 % confidence intervals), curves.csv, loss-curves.svg and results.md, and prints the tables.',
    )
    .argument('<config>', 'experiment config (JSON)')
    .option(
      '--optimizer <checkpoint>',
      'checkpoint of `l2l train` (a run directory: best/ is used, else latest/; or a snapshot directory), or pretrained:<name> (see l2l list); repeat it to compare several learned optimizers; without it only the baselines run',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .requiredOption('-o, --out <dir>', 'directory for the results')
    .option('--steps <n>', 'optimizee steps per run (default: evaluation.steps)', positiveInt)
    .option('--tasks <n>', 'number of held-out (test-split) tasks (default: evaluation.tasks)', positiveInt)
    .addOption(
      new Option(
        '--split <split>',
        'the split the tasks come from: test for final results; validation to choose between checkpoints or configs without touching the test split (the tasks\' test metrics are then left out)',
      )
        .choices(['test', 'validation'])
        .default('test'),
    )
    .option('--threads <n>', 'threads of a learned optimizer\'s fused kernel (default: training.workers, else 1); the losses do not change', positiveInt)
    .option('--redis <url>', 'run the tuning and evaluation runs as jobs on `l2l worker` processes through this Redis (redis://host:port): the same results')
    .option('--queue <name>', 'with --redis: the BullMQ queue workers listen on', DEFAULT_QUEUE)
    .addOption(backendOption())
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ l2l eval experiments/quadratic.json --optimizer runs/quadratic --out runs/quadratic/eval',
        '  $ l2l eval experiments/quadratic.json --optimizer runs/quadratic --steps 1000 --out runs/quadratic/eval-1000',
        '  $ l2l eval experiments/quadratic.json --optimizer runs/lstm --optimizer runs/rnnprop --out runs/compare',
        '  $ l2l eval experiments/quadratic.json --optimizer pretrained:quadratic-lstm --out runs/pretrained',
        '  $ l2l eval experiments/quadratic.json --optimizer runs/a --optimizer runs/b --split validation --out runs/choose',
      ].join('\n'),
    )
    .action(async (file: string, opts: EvalOptions) => {
      if (opts.redis) checkRedisUrl(opts.redis);
      const ws = ctx.loadExperiment(file);
      preflightExperiment(ws.experiment, ws.registry, file, 'eval', { steps: opts.steps, tasks: opts.tasks });
      const note = preflightNote(ws.experiment, ws.registry, 'eval');
      if (note) ctx.err(`warning: ${file}: ${note}`);
      // Every output location is checked before the evaluation runs, not after.
      // Locked like a training run's: two evaluations into one directory would mix their files.
      const { dir: outDir, release } = prepareLockedOutput(path.resolve(ctx.cwd, opts.out), 'eval', { shown: opts.out, onLost: (m) => ctx.err(`warning: ${m}`) });
      let runs: RedisRunSource | undefined;
      try {
        const backend = await useBackend(opts.backend ?? ws.experiment.backend);
        ctx.out(describeBackend(backend));
        const checkpoints = (opts.optimizer ?? []).map((p) => resolveCheckpoint(p, ctx.cwd));
        let last = '';
        runs = opts.redis
          ? new RedisRunSource({ redis: opts.redis, queue: opts.queue, experiment: ws.experiment, baseDir: ws.baseDir, backend: backend.name, onNotice: (m) => ctx.err(`notice: ${m}`) })
          : undefined;
        if (runs) ctx.out(runs.description);
        // Async: the event loop gets a turn after every run, so Ctrl-C and SIGTERM stop it within one run.
        const results = await evaluateExperimentAsync(ws.experiment, ws.registry, {
          ...(runs && { runs }),
          checkpoints,
          labels: opts.optimizer ?? [],
          baseDir: ws.baseDir,
          where: file,
          steps: opts.steps,
          tasks: opts.tasks,
          split: opts.split,
          threads: opts.threads,
          onProgress: (what, done, total) => {
            // One line per optimizer (and per tuning), not per task: logs stay short.
            if (what !== last && done <= 1) ctx.err(`${what}...`);
            last = what;
            void total;
          },
        });
        await runs?.close();
        runs = undefined;
        results.backend = backend.name;
        for (const { baseline, result } of results.tuning) {
          if (result.atEdge) {
            ctx.err(
              `warning: the tuned learning rate of ${baseline.type} (${result.best}) is the ${result.atEdge === 'high' ? 'largest' : 'smallest'} in ` +
                `evaluation.tuning.learningRates; extend the grid ${result.atEdge === 'high' ? 'upwards' : 'downwards'} for a fair comparison`,
            );
          }
        }
        writeEvaluation(outDir, results);
        fs.writeFileSync(path.join(outDir, 'loss-curves.svg'), await lossCurvesSvg(results));
        ctx.out('');
        ctx.out(resultsTable(results));
        ctx.out(resultsLegend(results));
        const compared = comparisonTable(results);
        if (compared) {
          ctx.out('');
          ctx.out(compared);
          for (const sentence of comparisonSentences(results)) ctx.out(`- ${sentence}`);
          ctx.out('');
        }
        ctx.out(`results in ${path.relative(ctx.cwd, outDir) || '.'}: results.json, curves.csv, results.md, loss-curves.svg`);
      } finally {
        await runs?.close();
        release();
      }
    });
}
