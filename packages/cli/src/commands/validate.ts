import type { Command } from 'commander';
import { isUserError, preflightExperiment, preflightNote, resolveExperiment } from '@l2l/core';
import type { CliContext } from '../context';

/** `l2l validate <config...>`: full validation, one line per problem. */
export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .summary('check experiment configs (shape, plugins, every component\'s options)')
    .description(
      'Check experiment configs without running them: the JSON, the experiment\'s fields, the plugins it lists (loaded from ' +
        'the config\'s directory), and every component\'s options against its schema. Prints "<file>: ok", or one line per ' +
        'problem naming the file, the component and the field (exit code 1)',
    )
    .argument('<config...>', 'experiment config file(s) (JSON)')
    .option('--no-plugins', 'do not load the plugins a config lists (no plugin code runs); their components are listed as not checked')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ l2l validate experiments/quadratic.json',
        '  $ l2l validate experiments/*.json',
      ].join('\n'),
    )
    .action((files: string[], opts: { plugins: boolean }) => {
      for (const file of files) {
        try {
          const ws = ctx.openExperiment(file, { plugins: opts.plugins });
          const skipped: string[] = [];
          const experiment = resolveExperiment(ws.config, ws.registry, file, { skipUnknownTypes: !opts.plugins, skipped });
          // The same pre-flight as train and eval: a run that could not fit is refused here already.
          preflightExperiment(experiment, ws.registry, file, 'all');
          const unchecked = opts.plugins ? '' : ` (plugins not loaded${ws.config.plugins.length ? `: ${ws.config.plugins.map((p) => (typeof p === 'string' ? p : p[0])).join(', ')}` : ''}; not checked: ${skipped.join(', ') || 'nothing'})`;
          ctx.out(`${file}: ok${unchecked}`);
          const note = preflightNote(experiment, ws.registry, 'all');
          if (note) ctx.err(`warning: ${file}: ${note}`);
        } catch (e) {
          if (!isUserError(e)) throw e;
          ctx.printError(e);
          ctx.exitCode = 1;
        }
      }
    });
}
