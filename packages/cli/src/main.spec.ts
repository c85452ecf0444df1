import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { componentsModule, defineComponent, validateWithSchema, type ComponentDefinition, type JsonSchema } from '@l2l/core';
import type { ContainerModule } from 'inversify';
import { main, type MainOptions } from './index';

const closed = (properties: object) => ({ type: 'object', additionalProperties: false, properties });
const stub = () => ({}) as never;

/** Components the tests register instead of the packages' (which other work changes). */
const specComponents: ComponentDefinition[] = [
  defineComponent<{ dims: number }>()({
    kind: 'optimizee',
    type: 'quadratic',
    description: 'Test quadratics',
    schema: closed({ dims: { type: 'integer', minimum: 1, default: 10, description: 'Dimensions' } }),
    create: stub,
    estimate: ({ dims }) => ({ coordinates: dims }),
  }),
  defineComponent<{ hidden: number }>()({
    kind: 'meta-optimizer',
    type: 'lstm',
    description: 'Test LSTM',
    schema: closed({ hidden: { type: 'integer', minimum: 1, default: 20, description: 'Hidden units' } }),
    create: stub,
    estimate: ({ hidden }) => ({ weights: hidden }),
  }),
  ...['sgd', 'nag', 'rmsprop', 'adam'].map((type) =>
    defineComponent<{ learningRate: number }>()({
      kind: 'optimizer',
      type,
      description: `Test ${type}`,
      schema: closed({ learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Step size' } }),
      create: stub,
    }),
  ),
];
const modules: ContainerModule[] = [componentsModule({ source: '@l2l/spec', components: specComponents })];

async function run(argv: string[], options: MainOptions = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { modules, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), ...options });
  return { code, stdout, stderr };
}

let dir: string;
const write = (name: string, value: unknown) => {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return file;
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-cli-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('l2l --help and usage errors', () => {
  it('l2l --help lists every command with examples (exit 0)', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const cmd of ['list', 'validate', 'schema', 'help']) expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, 'm'));
    expect(r.stdout).toContain('Examples:');
  });

  it.each(['list', 'validate', 'schema'])('l2l %s --help says what it does, with examples (exit 0)', async (cmd) => {
    const r = await run([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Usage: l2l ${cmd}`);
    expect(r.stdout).toMatch(/Examples:\n  \$ l2l /);
    expect((await run(['help', cmd])).stdout).toBe(r.stdout);
  });

  it('--version prints the package version (exit 0)', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [['frobnicate'], /error: unknown command 'frobnicate'/],
    [['list', '--bogus'], /error: unknown option '--bogus'/],
    [['validate'], /error: missing required argument 'config'/],
    [['list', 'extra'], /error: too many arguments for 'list'/],
    [['list', '--config'], /error: option '-c, --config <file>' argument missing/],
  ])('%j is a usage error (exit 2, commander\'s message)', async (argv, message) => {
    const r = await run(argv as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('(add --help for usage)');
    expect(r.stdout).toBe('');
  });

  it('no command prints the help to stderr (exit 2)', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: l2l');
  });
});

describe('l2l list', () => {
  it('prints a table grouped by kind with descriptions, defaults and sources', async () => {
    const r = await run(['list']);
    expect(r.code).toBe(0);
    const out = r.stdout;
    const optimizees = out.indexOf('Optimizees');
    const metas = out.indexOf('Meta-optimizers');
    const baselines = out.indexOf('Optimizers: hand-designed baselines');
    expect(optimizees).toBeGreaterThanOrEqual(0);
    expect(metas).toBeGreaterThan(optimizees);
    expect(baselines).toBeGreaterThan(metas);
    expect(out.slice(optimizees, metas)).toMatch(/quadratic\s+@l2l\/spec\s+Test quadratics\n\s+defaults: dims=10\n/);
    expect(out.slice(metas, baselines)).toMatch(/lstm\s+@l2l\/spec\s+Test LSTM\n\s+defaults: hidden=20\n/);
    expect(out.slice(baselines)).toMatch(/sgd\s+@l2l\/spec\s+Test sgd\n\s+defaults: learningRate=0.01/);
  });

  it('--json prints every component with kind, type, description, source, defaults and schema', async () => {
    const r = await run(['list', '--json']);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.stdout);
    expect(parsed.plugins).toEqual([]);
    // The modules given, and core's own components (the built-in estimators and learning-rate schedules).
    expect(parsed.components.filter((c: { source: string }) => c.source !== '@l2l/core')).toHaveLength(specComponents.length);
    expect(parsed.components.filter((c: { source: string }) => c.source === '@l2l/core').map((c: { kind: string; type: string }) => `${c.kind}:${c.type}`)).toEqual([
      'estimator:es',
      'estimator:pes',
      'estimator:tbptt',
      'schedule:constant',
      'schedule:cosine',
      'schedule:exponential',
      'schedule:linear',
      'schedule:steps',
    ]);
    expect(parsed.components).toContainEqual({
      kind: 'optimizee',
      type: 'quadratic',
      description: 'Test quadratics',
      source: '@l2l/spec',
      defaults: { dims: 10 },
      schema: specComponents[0]!.schema,
    });
  });

  it('works with the packages the CLI ships with', async () => {
    const r = await run(['list', '--json'], { modules: undefined });
    expect(r.code).toBe(0);
    const { components } = JSON.parse(r.stdout) as { components: Array<Record<string, unknown>> };
    for (const c of components) {
      const keys = ['defaults', 'description', 'kind', 'schema', 'source', 'type'];
      expect(Object.keys(c).sort()).toEqual(c.kind === 'meta-optimizer' ? [...keys.slice(0, 2), 'kernel', ...keys.slice(2)] : keys);
      expect(['@l2l/core', '@l2l/optimizees', '@l2l/meta-optimizers', '@l2l/baselines']).toContain(c.source);
    }
    // Which learned optimizers have a fused kernel, in the JSON and the table.
    const kernels = Object.fromEntries(components.filter((c) => c.kind === 'meta-optimizer').map((c) => [c.type, c.kernel]));
    expect(kernels).toEqual({
      lstm: 'wasm lstm-stack (SIMD, FMA where available)',
      rnnprop: 'wasm lstm-stack (SIMD, FMA where available)',
      'normalized-history': 'wasm normalized-history (SIMD, FMA where available)',
      'per-group': "each group's own, where every learned group's meta-optimizer has one (a baseline group runs its tfjs update inside it)",
      'multiscale-adam': 'linear combiner: js; mlp combiner: wasm multiscale-mlp; rnn combiner: wasm lstm-stack (SIMD, FMA where available)',
    });
    const table = (await run(['list'], { modules: undefined })).stdout;
    expect(table).toMatch(/kernel: wasm lstm-stack \(SIMD, FMA where available\): fused first-order meta-training and evaluation/);
    expect(table).toMatch(/kernel: wasm normalized-history \(SIMD, FMA where available\): fused first-order meta-training and evaluation/);
    // Every built-in learned optimizer has a kernel now.
    expect(table).not.toMatch(/kernel: none/);
    expect((await run(['list'], { modules: undefined })).code).toBe(0);
  });

  it('shows the pretrained learned optimizers, by the name eval takes, with their cards', async () => {
    const json = JSON.parse((await run(['list', '--json'])).stdout) as { pretrained: Array<{ name: string; metaOptimizer: { type: string }; summary: string; card: string }> };
    const q = json.pretrained.find((p) => p.name === 'pretrained:quadratic-lstm')!;
    expect(q.metaOptimizer.type).toBe('lstm');
    expect(q.summary).toMatch(/quadratic/i);
    expect(fs.existsSync(q.card)).toBe(true);
    const text = (await run(['list'])).stdout;
    expect(text).toMatch(/^Pretrained learned optimizers \(\d+\)/m);
    expect(text).toMatch(/^  pretrained:quadratic-lstm {2}\(lstm\) /m);
  });
});

describe('l2l validate', () => {
  const good = { optimizee: { type: 'quadratic', options: { dims: 3 } }, metaOptimizer: { type: 'lstm' } };

  it('prints "<file>: ok" for a valid config (exit 0)', async () => {
    const file = write('good.json', good);
    const r = await run(['validate', file]);
    expect(r).toEqual({ code: 0, stdout: `${file}: ok\n`, stderr: '' });
  });

  it('names the file as given, relative to the working directory', async () => {
    write('good.json', good);
    const r = await run(['validate', 'good.json'], { cwd: dir });
    expect(r.stdout).toBe('good.json: ok\n');
  });

  it('reports an unknown type (exit 1)', async () => {
    const file = write('unknown-type.json', { optimizee: { type: 'quadratik' } });
    const r = await run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${file}: optimizee: unknown optimizee type "quadratik" (known: quadratic)\n`);
  });

  it('reports a wrong option type naming the component and the field (exit 1)', async () => {
    const file = write('wrong-type.json', { optimizee: { type: 'quadratic', options: { dims: 'x' } } });
    const r = await run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${file}: optimizee "quadratic": dims must be an integer ≥ 1, got "x"\n`);
  });

  it('reports an unknown option field (exit 1)', async () => {
    const file = write('unknown-field.json', { optimizee: { type: 'quadratic', options: { dim: 3 } } });
    const r = await run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${file}: optimizee "quadratic": unknown field "dim" (known: dims)\n`);
  });

  it('reports an unknown experiment field (exit 1)', async () => {
    const file = write('unknown-top.json', { ...good, trainng: {} });
    const r = await run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${file}: unknown field "trainng" \\(known: .*training.*\\)\n$`));
  });

  it('prints one line per problem, across components', async () => {
    const file = write('many.json', {
      optimizee: { type: 'quadratic', options: { dims: 0 } },
      metaOptimizer: { type: 'lstm', options: { hidden: 'big', layers: 2 } },
      evaluation: { baselines: [{ type: 'sgd' }, { type: 'adamw' }] },
    });
    const r = await run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `${file}: optimizee "quadratic": dims must be an integer ≥ 1, got 0`,
      `${file}: metaOptimizer (meta-optimizer "lstm"): unknown field "layers" (known: hidden)`,
      `${file}: metaOptimizer (meta-optimizer "lstm"): hidden must be an integer ≥ 1, got "big"`,
      `${file}: evaluation.baselines[1]: unknown optimizer type "adamw" (known: adam, nag, rmsprop, sgd)`,
    ]);
  });

  it('checks a report spec against its schema, and the experiment configs it names as experiments', async () => {
    write('good.json', good);
    write('bad-option.json', { optimizee: { type: 'quadratic', options: { dims: 0 } } });
    const report = (evaluations: unknown[], extra: object = {}) => ({ title: 'T', checkpoint: { dir: 'runs/x', config: 'good.json' }, results: 'runs/r', evaluations, ...extra });
    const ok = write('report.json', report([{ name: 'a', config: 'good.json' }, { name: 'b', config: 'good.json', steps: 20 }]));
    expect(await run(['validate', ok])).toEqual({ code: 0, stdout: `${ok}: ok (report spec; 1 experiment config checked)\n`, stderr: '' });

    // A bad config it names: the config's own error line (named as seen from the working directory), exit 1.
    const bad = write('report-bad.json', report([{ name: 'a', config: 'good.json' }, { name: 'b', config: 'bad-option.json' }]));
    const r = await run(['validate', 'report-bad.json'], { cwd: dir });
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'bad-option.json: optimizee "quadratic": dims must be an integer ≥ 1, got 0\n' });
    expect(fs.existsSync(bad)).toBe(true);

    // A missing config, and the spec's own schema: each one line naming the file.
    const missing = write('report-missing.json', report([{ name: 'a', config: 'nope.json' }]));
    const m = await run(['validate', missing]);
    expect(m.code).toBe(1);
    expect(m.stderr).toBe(`${path.join(dir, 'nope.json')}: cannot read: no such file\n`);
    const twice = write('report-twice.json', report([{ name: 'a', config: 'good.json' }, { name: 'a', config: 'good.json' }]));
    expect(await run(['validate', twice])).toEqual({ code: 1, stdout: '', stderr: `${twice}: evaluations: the name "a" is used twice\n` });
  });

  it('validates several files, exit 1 if any fails', async () => {
    const ok = write('good.json', good);
    const bad = write('unknown-type.json', { optimizee: { type: 'quadratik' } });
    const r = await run(['validate', ok, bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`${ok}: ok\n`);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('reports a missing file and invalid JSON on one line each', async () => {
    const missing = path.join(dir, 'nope.json');
    expect(await run(['validate', missing])).toEqual({ code: 1, stdout: '', stderr: `${missing}: cannot read: no such file\n` });
    const broken = write('broken.json', '{\n  "optimizee": {\n');
    const r = await run(['validate', broken]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${broken}(:\\d+)?: invalid JSON: .*\n$`));
  });

  it('prints stack traces only with --verbose', async () => {
    const file = write('unknown-type.json', { optimizee: { type: 'quadratik' } });
    const plain = await run(['validate', file]);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    const verbose = await run(['validate', file, '--verbose']);
    expect(verbose.code).toBe(1);
    expect(verbose.stderr.split('\n')[0]).toBe(`${file}: optimizee: unknown optimizee type "quadratik" (known: quadratic)`);
    expect(verbose.stderr).toMatch(/UserError: .*\n\s+at /);
  });
});

describe('l2l schema', () => {
  it('prints the full experiment JSON Schema, which validates configs', async () => {
    const r = await run(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.title).toBe('l2l experiment');
    expect(schema.properties.optimizee.properties.type.enum).toEqual(['quadratic']);
    // Editors validate with it: it compiles (under ajv's strict mode, as core compiles schemas) and checks options.
    const validate = (config: unknown) => () => validateWithSchema(schema as JsonSchema, config, 'exp.json');
    expect(validate({ optimizee: { type: 'quadratic', options: { dims: 3 } } })).not.toThrow();
    expect(validate({ optimizee: { type: 'quadratic', options: { dims: 'x' } } })).toThrow(/optimizee.options.dims must be an integer ≥ 1, got "x"/);
    expect(validate({ optimizee: { type: 'quadratic' }, evaluation: { baselines: [{ type: 'sgd', options: { learningRate: -1 } }] } })).toThrow(
      /evaluation.baselines\[0\].options.learningRate must be a number > 0, got -1/,
    );
  });

  it('works with the packages the CLI ships with', async () => {
    const r = await run(['schema'], { modules: undefined });
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as JsonSchema;
    expect(() => validateWithSchema(schema, { optimizee: { type: 'no-such-type' } }, 'exp.json')).toThrow(/optimizee.type must be one of/);
  });
});

describe('errors that are not the user\'s', () => {
  it('are one "internal error" line (exit 3), with their stack only under --verbose', async () => {
    const broken = componentsModule({
      source: '@l2l/broken',
      components: [{ kind: 'optimizee', type: 'Bad Type', description: 'x', schema: closed({}), create: stub }],
    });
    const r = await run(['list'], { modules: [broken] });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^internal error: Error: optimizee "Bad Type" \(@l2l\/broken\): type must be lower-case kebab-case.*--verbose.*\n$/);
    const verbose = await run(['list', '--verbose'], { modules: [broken] });
    expect(verbose.code).toBe(3);
    expect(verbose.stderr).toMatch(/^internal error: Error: optimizee "Bad Type".*\nError: optimizee "Bad Type" .*\n\s+at /);
  });
});
