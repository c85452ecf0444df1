import * as fs from 'node:fs';
import * as path from 'node:path';

/*
 * The layering of @l2l/core, read from its import statements: contracts stand alone; the engine depends on
 * contracts and leaf utilities, never on the experiment file, the registry, the pipeline, plugins or the CLI;
 * the registry and plugin loading do not depend on the experiment file either.
 */

const SRC = __dirname;

/** The folder (or top-level file) of `src/` that each relative import of `file` lands in. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import|require\()\s*'([^']+)'/g)) {
    const spec = m[1]!;
    if (!spec.startsWith('.')) {
      out.push(spec);
      continue;
    }
    const rel = path.relative(SRC, path.resolve(path.dirname(file), spec));
    out.push(rel.split(path.sep)[0]!.replace(/\.ts$/, ''));
  }
  return out;
}

function sources(dir: string): string[] {
  return fs
    .readdirSync(path.join(SRC, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts') && !f.endsWith('.fixture.ts'))
    .map((f) => path.join(SRC, dir, f));
}

function offenders(files: string[], forbidden: (target: string) => boolean): string[] {
  return files.flatMap((f) => importsOf(f).filter(forbidden).map((t) => `${path.relative(SRC, f)} → ${t}`));
}

describe('@l2l/core layering', () => {
  it('contracts import only contracts, tensor-tree and tfjs', () => {
    expect(offenders(sources('contracts'), (t) => !['contracts', 'tensor-tree', '@tensorflow/tfjs-core'].includes(t))).toEqual([]);
  });

  it('the engine imports neither the experiment file, the registry, the pipeline, plugins nor the CLI', () => {
    const bad = ['config', 'registry', 'pipeline', 'plugins', 'container', 'testing'];
    expect(offenders(sources('engine'), (t) => bad.includes(t) || t.startsWith('@l2l/'))).toEqual([]);
  });

  it('the registry and plugin loading do not import the experiment file, the pipeline or the CLI', () => {
    const files = [...sources('registry'), path.join(SRC, 'plugins.ts')];
    expect(offenders(files, (t) => ['config', 'pipeline'].includes(t) || t.startsWith('@l2l/'))).toEqual([]);
  });

  it('the check itself sees imports (this file\'s own would be found)', () => {
    // A scan that finds nothing proves nothing: the engine's files do import contracts.
    expect(sources('engine').flatMap(importsOf)).toContain('contracts');
    expect(offenders([path.join(SRC, 'pipeline', 'train.ts')], (t) => t === 'config')).not.toEqual([]);
  });
});
