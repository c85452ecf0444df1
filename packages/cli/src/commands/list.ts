import type { Command } from 'commander';
import { COMPONENT_KINDS, optionDefaults, type ComponentKind } from '@l2l/core';
import { listPretrained } from '@l2l/pretrained';
import type { CliContext } from '../context';
import { formatDefaults, table } from '../format';

const KIND_TITLES: Record<ComponentKind, string> = {
  optimizee: 'Optimizees: task families to meta-train and evaluate on, used as "optimizee"',
  'meta-optimizer': 'Meta-optimizers: learned optimizers, used as "metaOptimizer"',
  optimizer: 'Optimizers: hand-designed baselines, used in "evaluation.baselines" (and as "training.outerOptimizer")',
  estimator: 'Estimators: meta-gradient estimators, used as "training.estimator"',
  schedule: 'Schedules: the outer learning rate by outer step, used as "training.learningRateSchedule"',
};

/** `l2l list [--json] [--config <file>]`: every registered component. */
export function registerList(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .summary('list the registered components and their option defaults')
    .description('List every registered component (task families, learned optimizers, baselines) with its option defaults and the package that provides it')
    .option('--json', 'print JSON: { components: [{ kind, type, description, source, defaults, schema, kernel (meta-optimizers) }], plugins: [...], pretrained: [...] }')
    .option('-c, --config <file>', 'also load the plugins that this experiment config lists')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ l2l list',
        '  $ l2l list --config experiments/rosenbrock.json     # include that config\'s plugins',
        '  $ l2l list --json | jq \'.components[] | select(.kind == "optimizee") | .type\'',
      ].join('\n'),
    )
    .action((opts: { json?: boolean; config?: string }) => {
      const ws = ctx.workspace(opts.config);
      const components = ws.registry.list().map((c) => ({
        kind: c.kind,
        type: c.type,
        description: c.description,
        source: c.source,
        defaults: optionDefaults(c),
        schema: c.schema,
        ...(c.kind === 'meta-optimizer' && { kernel: c.fusedKernel ?? null }),
      }));
      const pretrained = listPretrained().map((p) => ({ name: `pretrained:${p.name}`, metaOptimizer: p.metaOptimizer, summary: p.summary, card: `${p.dir}/card.md` }));
      if (opts.json) {
        const plugins = ws.plugins.map((p) => ({ name: p.plugin.name, package: p.packageName, file: p.file, description: p.plugin.description ?? null }));
        ctx.out(JSON.stringify({ components, plugins, pretrained }, null, 2));
        return;
      }
      const lines: string[] = [];
      for (const kind of COMPONENT_KINDS) {
        const ofKind = components.filter((c) => c.kind === kind);
        if (lines.length) lines.push('');
        lines.push(`${KIND_TITLES[kind]} (${ofKind.length})`);
        if (!ofKind.length) {
          lines.push('  (none registered)');
          continue;
        }
        const rows = table([['TYPE', 'SOURCE', 'DESCRIPTION'], ...ofKind.map((c) => [c.type, c.source, c.description])], '  ');
        const indent = ' '.repeat(rows[0]!.indexOf('DESCRIPTION'));
        lines.push(rows[0]!);
        ofKind.forEach((c, i) => {
          lines.push(rows[i + 1]!);
          lines.push(`${indent}defaults: ${formatDefaults(c.defaults)}`);
          if (kind === 'meta-optimizer') {
            lines.push(`${indent}kernel: ${c.kernel ? `${c.kernel}: fused first-order meta-training and evaluation` : 'none: tfjs tape only'}`);
          }
        });
      }
      if (ws.plugins.length) {
        lines.push('', `Plugins: ${ws.plugins.map((p) => p.packageName).join(', ')}`);
      }
      lines.push('', `Pretrained learned optimizers (${pretrained.length}): use as \`l2l eval --optimizer NAME\` or learnedOptimizer(NAME) from @l2l/pretrained`);
      for (const p of pretrained) lines.push(`  ${p.name}  (${p.metaOptimizer.type}) ${p.summary}`, `    card: ${p.card}`);
      for (const line of lines) ctx.out(line);
    });
}
