import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '@l2l/core';
import type { CliContext } from '../context';

/** The plugin template: a package that builds and passes its tests on its own (see its README). */
export const PLUGIN_TEMPLATE_DIR = path.join(__dirname, '..', '..', 'template', 'plugin');
const TEMPLATE_NAME = 'l2l-plugin-example';
const TEMPLATE_TYPES = /\bexample-(parabolas|sign-sgd|scaled-momentum)\b/g;

/** The component type prefix a plugin name gives: `l2l-plugin-foo` and `@me/l2l-plugin-foo` give `foo`. */
export function pluginPrefix(name: string): string {
  if (!/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new UserError(`plugin name ${JSON.stringify(name)}: not a valid npm package name (lower case, e.g. l2l-plugin-foo or @me/l2l-plugin-foo)`);
  }
  const prefix = name.replace(/^@[^/]+\//, '').replace(/^l2l-plugin-/, '').replace(/[._]/g, '-');
  if (!/^[a-z0-9][a-z0-9-]*$/.test(prefix)) throw new UserError(`plugin name ${JSON.stringify(name)}: its component prefix "${prefix}" must be kebab-case`);
  return prefix;
}

/** Writes a plugin package named `name` into `dir` (which must not exist or be empty); returns the files written. */
export function scaffoldPlugin(name: string, dir: string): string[] {
  const prefix = pluginPrefix(name);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new UserError(`${dir}: exists and is not empty; choose another --dir`);
  const coreVersion = (JSON.parse(fs.readFileSync(require.resolve('@l2l/core/package.json'), 'utf8')) as { version: string }).version;
  const written: string[] = [];
  const copy = (from: string, to: string) => {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist') continue;
      const src = path.join(from, entry.name);
      const dest = path.join(to, entry.name);
      if (entry.isDirectory()) {
        copy(src, dest);
        continue;
      }
      let text = fs.readFileSync(src, 'utf8').replaceAll(TEMPLATE_NAME, name).replace(TEMPLATE_TYPES, `${prefix}-$1`);
      if (entry.name === 'package.json') text = text.replaceAll('"@l2l/core": "^0.1.0"', `"@l2l/core": "^${coreVersion}"`);
      fs.writeFileSync(dest, text);
      written.push(path.relative(dir, dest));
    }
  };
  copy(PLUGIN_TEMPLATE_DIR, dir);
  return written.sort();
}

/** `l2l init plugin <name> [--dir <dir>]`: a plugin package to start from. */
export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .summary('scaffold a plugin package')
    .description(
      'Write a plugin package: a task family, a baseline optimizer and a learned optimizer, each with a test running ' +
        "@l2l/core/testing's contract checks. It builds and passes its tests on its own (npm install && npm test).",
    )
    .argument('<what>', 'what to scaffold: plugin')
    .argument('<name>', 'npm package name, e.g. l2l-plugin-foo (component types get the prefix foo-)')
    .option('--dir <dir>', 'where to write it (default: ./<name without scope>)')
    .addHelpText('after', ['', 'Examples:', '  $ l2l init plugin l2l-plugin-foo', '  $ cd l2l-plugin-foo && npm install && npm test'].join('\n'))
    .action((what: string, name: string, opts: { dir?: string }) => {
      if (what !== 'plugin') throw new UserError(`l2l init: can scaffold "plugin", not ${JSON.stringify(what)}`);
      const dir = path.resolve(ctx.cwd, opts.dir ?? name.replace(/^@[^/]+\//, ''));
      const files = scaffoldPlugin(name, dir);
      ctx.out(`wrote ${name} to ${dir}: ${files.join(', ')}`);
      ctx.out(`next: cd ${path.relative(ctx.cwd, dir) || '.'} && npm install && npm test`);
    });
}
