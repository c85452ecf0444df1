import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { isUserError, preflightExperiment, preflightNote, resolveExperiment } from '@l2l/core';
import type { CliContext } from '../context';
import { loadReportSpec } from '../report/spec';

/**
 * Whether `file` reads as a report spec (`l2l report`'s JSON: evaluations, no optimizee) rather than an
 * experiment; anything unreadable is left to the experiment path, whose errors say what is wrong.
 */
function isReportSpec(file: string, cwd: string): boolean {
  try {
    const raw: unknown = JSON.parse(fs.readFileSync(path.resolve(cwd, file), 'utf8'));
    return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'evaluations' in raw && !('optimizee' in raw);
  } catch {
    return false;
  }
}

/** `l2l validate <config...>`: full validation, one line per problem. */
export function registerValidate(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .summary('check experiment configs and report specs (shape, plugins, every component\'s options)')
    .description(
      'Check experiment configs without running them: the JSON, the experiment\'s fields, the plugins it lists (loaded from ' +
        'the config\'s directory), and every component\'s options against its schema. A report spec (`l2l report`\'s JSON) is ' +
        'checked against its own schema, and the experiment configs its evaluations and checkpoints name are checked as above. ' +
        'Prints "<file>: ok", or one line per problem naming the file, the component and the field (exit code 1)',
    )
    .argument('<config...>', 'experiment config file(s) or report spec(s) (JSON)')
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
      /** Checks one experiment config; returns what was not checked (plugins off), '' otherwise. */
      const checkExperiment = (file: string): string => {
        const ws = ctx.openExperiment(file, { plugins: opts.plugins });
        const skipped: string[] = [];
        const experiment = resolveExperiment(ws.config, ws.registry, file, { skipUnknownTypes: !opts.plugins, skipped });
        // The same pre-flight as train and eval: a run that could not fit is refused here already.
        preflightExperiment(experiment, ws.registry, file, 'all');
        const note = preflightNote(experiment, ws.registry, 'all');
        if (note) ctx.err(`warning: ${file}: ${note}`);
        return opts.plugins ? '' : ` (plugins not loaded${ws.config.plugins.length ? `: ${ws.config.plugins.map((p) => (typeof p === 'string' ? p : p[0])).join(', ')}` : ''}; not checked: ${skipped.join(', ') || 'nothing'})`;
      };
      for (const file of files) {
        try {
          if (!isReportSpec(file, ctx.cwd)) {
            ctx.out(`${file}: ok${checkExperiment(file)}`);
            continue;
          }
          const spec = loadReportSpec(file, ctx.cwd);
          const configs = [...new Set([...Object.values(spec.resolved.configs), ...spec.resolved.checkpoints.flatMap((c) => (c.config === null ? [] : [c.config]))])];
          let failed = false;
          for (const config of configs) {
            // Relative to the working directory where it lies below it, as a user would type it; absolute otherwise.
            const rel = path.relative(ctx.cwd, config);
            const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : config;
            try {
              checkExperiment(shown);
            } catch (e) {
              if (!isUserError(e)) throw e;
              ctx.printError(e);
              failed = true;
            }
          }
          if (failed) ctx.exitCode = 1;
          else ctx.out(`${file}: ok (report spec; ${configs.length} experiment config${configs.length === 1 ? '' : 's'} checked)`);
        } catch (e) {
          if (!isUserError(e)) throw e;
          ctx.printError(e);
          ctx.exitCode = 1;
        }
      }
    });
}
