import type { Command } from 'commander';
import { fullExperimentSchema } from '@l2l/core';
import type { CliContext } from '../context';

/** `l2l schema [--config <file>]`: the experiment JSON Schema over the registry. */
export function registerSchema(program: Command, ctx: CliContext): void {
  program
    .command('schema')
    .summary('print the JSON Schema of experiment configs')
    .description(
      'Print the JSON Schema of experiment configs, with the options of every registered component spelled out ' +
        '(point a config\'s "$schema" at it for editor completion and checking)',
    )
    .option('-c, --config <file>', 'also include the components of the plugins that this experiment config lists')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ l2l schema > experiment.schema.json',
        '  $ l2l schema --config experiments/rosenbrock.json > experiments/experiment.schema.json',
      ].join('\n'),
    )
    .action((opts: { config?: string }) => {
      ctx.out(JSON.stringify(fullExperimentSchema(ctx.workspace(opts.config).registry), null, 2));
    });
}
