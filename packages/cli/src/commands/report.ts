import * as path from 'node:path';
import type { Command } from 'commander';
import { describeBackend, useBackend, UserError, type BackendChoice } from '@l2l/core';
import { checkRedisUrl, DEFAULT_QUEUE } from '@l2l/distributed';
import type { CliContext } from '../context';
import { backendOption } from '../options';
import { prepareSharedOutput } from '../output';
import { runReport } from '../report/run-report';
import { loadReportSpec } from '../report/spec';

interface ReportOptions {
  out?: string;
  train?: boolean;
  collect?: boolean;
  only?: string[];
  baselinesOnly?: boolean;
  learnedOnly?: boolean;
  backend?: BackendChoice;
  redis?: string;
  queue: string;
}

/** The command line as the user could type it again (what the page says made it). */
function commandLine(file: string, opts: ReportOptions): string {
  const parts = ['l2l', 'report', file];
  if (opts.out !== undefined) parts.push('--out', opts.out);
  if (opts.train) parts.push('--train');
  if (opts.collect) parts.push('--collect');
  if (opts.only) parts.push('--only', ...opts.only);
  if (opts.baselinesOnly) parts.push('--baselines-only');
  if (opts.learnedOnly) parts.push('--learned-only');
  if (opts.backend) parts.push('--backend', opts.backend);
  return parts.join(' ');
}

/** `l2l report <spec>`: one or more checkpoints evaluated on several configs, written up as a markdown page with plots. */
export function registerReport(program: Command, ctx: CliContext): void {
  program
    .command('report')
    .summary('evaluate learned optimizers on several configs and write a results page')
    .description(
      'Run a report spec (JSON): the learned optimizer of one checkpoint ("checkpoint": {dir, config}), or of several ' +
        '("checkpoints": [{name, dir, config}], compared with each other; name, a kebab-case label on the page and in file names, ' +
        'defaults to the meta-optimizer type), never retrained, evaluated against tuned ' +
        'baselines on each listed config (with its own step and task counts). Each evaluation\'s raw results go to ' +
        '<results>/<name>/ (results.json, curves.csv, results.md, run.json; the baselines\' runs also in baselines.json, reused by later ' +
        'reports while the optimizee, evaluation settings, seed, steps, tasks and backend stay the same, since they do not depend on ' +
        'the checkpoints; each learned optimizer\'s run in learned-<checkpoint name>.json, reused while its snapshot\'s files and those ' +
        'settings stay the same, so adding a checkpoint to a spec runs only it); the page (results.md) and one SVG of loss ' +
        'curves per evaluation go to the output directory. The page names the command, the git commit (and whether ' +
        'the tree was dirty), the backend, the date and the time each part took, and says in words where each learned ' +
        'optimizer wins or loses.',
    )
    .argument(
      '<spec>',
      'report spec (JSON): title, checkpoint {dir, config} or checkpoints [{name, dir, config}], results, out, tasks, evaluations [{name, config, steps, tasks, title, note, checkpoints (names; default all)}]',
    )
    .option('-o, --out <dir>', 'directory of the page and plots (default: the spec\'s "out")')
    .option('--train', 'train each checkpoint whose directory holds none (l2l train <config> --out <dir>)')
    .option('--collect', 'run nothing: build the page from the results an earlier report wrote')
    .option('--only <name...>', 'run only these evaluations; collect the others from an earlier report')
    .option('--baselines-only', 'only run the tuned baselines of the evaluations (or of --only\'s) and keep them for later reports; no checkpoint needed, no page')
    .option('--learned-only', 'only run the checkpoints\' learned optimizers on the evaluations (or on --only\'s) and keep them for later reports; no baselines, no page (beside a --baselines-only run, on another core)')
    .option('--redis <url>', 'train (--train) and evaluate on `l2l worker` processes through this Redis (redis://host:port), as l2l train/eval --redis do')
    .option('--queue <name>', 'with --redis: the BullMQ queue workers listen on', DEFAULT_QUEUE)
    .addOption(backendOption())
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ l2l train experiments/mnist.json --out runs/mnist',
        '  $ l2l report experiments/report-mnist.json                 # evaluate runs/mnist, write docs/results.md',
        '  $ l2l report experiments/report-mnist.json --train         # train runs/mnist first if it is missing',
        '  $ l2l report experiments/report-mnist.json --only mnist-relu',
        '  $ l2l report experiments/report-mnist.json --baselines-only    # while runs/mnist still trains',
        '  $ l2l report experiments/report-mnist.json --learned-only      # beside --baselines-only, once runs/mnist is trained',
        '  $ l2l report experiments/report-mnist.json --collect --out /tmp/page',
        '',
        'Several learned optimizers on one page ("checkpoint" is the same as a one-element "checkpoints"):',
        '  "checkpoints": [{ "dir": "../runs/mnist", "config": "mnist.json" },',
        '                  { "name": "rnnprop", "dir": "../runs/rnnprop-mnist", "config": "rnnprop-mnist.json" }]',
      ].join('\n'),
    )
    .action(async (file: string, opts: ReportOptions) => {
      if (opts.collect && opts.only) throw new UserError('--collect and --only exclude each other (--only already collects the evaluations it does not name)');
      if (opts.collect && opts.train) throw new UserError('--collect and --train exclude each other');
      if (opts.baselinesOnly && (opts.collect || opts.train)) throw new UserError('--baselines-only excludes --collect and --train');
      if (opts.learnedOnly && (opts.collect || opts.train || opts.baselinesOnly)) throw new UserError('--learned-only excludes --collect, --train and --baselines-only');
      const spec = loadReportSpec(file, ctx.cwd);
      const out = opts.out !== undefined ? path.resolve(ctx.cwd, opts.out) : spec.resolved.out;
      if (out === null) throw new UserError(`${file}: no output directory: give --out or set "out" in the spec`);
      // Both output locations are checked before anything runs.
      if (!opts.baselinesOnly && !opts.learnedOnly) prepareSharedOutput(out, opts.out ?? path.relative(ctx.cwd, out), opts.out !== undefined ? '--out' : `${file}: "out"`);
      prepareSharedOutput(spec.resolved.results, path.relative(ctx.cwd, spec.resolved.results), `${file}: "results"`);
      const first = spec.evaluations[0]!;
      const backendChoice = opts.backend ?? ctx.loadExperiment(spec.resolved.configs[first.name]!).experiment.backend;
      const backend = await useBackend(backendChoice);
      ctx.out(describeBackend(backend));
      const result = await runReport(spec, {
        ...(opts.redis && { distributed: { redis: checkRedisUrl(opts.redis), queue: opts.queue } }),
        outDir: out,
        train: opts.train === true,
        collect: opts.collect === true,
        only: opts.only ?? null,
        baselinesOnly: opts.baselinesOnly === true,
        learnedOnly: opts.learnedOnly === true,
        command: commandLine(file, opts),
        cwd: ctx.cwd,
        backend: { name: backend.name, line: describeBackend(backend) },
        loadExperiment: (f) => ctx.loadExperiment(f),
        log: (line) => ctx.err(line),
      });
      const shown = (p: string) => path.relative(ctx.cwd, p) || '.';
      if (result.ran.length) ctx.out(`ran: ${result.ran.join(', ')}`);
      if (result.collected.length) ctx.out(`collected: ${result.collected.join(', ')}`);
      if (result.files.length) ctx.out(`wrote ${result.files.map(shown).join(', ')}`);
    });
}
