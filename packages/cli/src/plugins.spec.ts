import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from './index';

/**
 * Plugins loaded through a config, as in a user's project: a temp directory whose node_modules holds the
 * example plugin (a symlink, so Node resolves it and its own @l2l/core by realpath) and small fake packages.
 */
const EXAMPLE = path.resolve(__dirname, '../../../examples/plugin-rosenbrock');

async function run(argv: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

let project: string;

function fakePackage(name: string, files: Record<string, string>, manifest: object = {}): void {
  const dir = path.join(project, 'node_modules', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js', ...manifest }));
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text);
}

function config(name: string, plugins: unknown[], extra: object = {}): string {
  // Baselines are left out so the test does not depend on which baselines the CLI ships with.
  const body = { plugins, optimizee: { type: 'rosenbrock', options: { dims: 3 } }, evaluation: { baselines: [] }, ...extra };
  fs.writeFileSync(path.join(project, name), JSON.stringify(body, null, 2));
  return name;
}

// A plugin object built by hand (the brand definePlugin sets), so a fake package needs no @l2l/core.
const handMadePlugin = (body: string) => `module.exports = { default: { [Symbol.for('l2l.plugin')]: true, name: 'fake', modules() { ${body} } } };\n`;

beforeAll(() => {
  if (!fs.existsSync(path.join(EXAMPLE, 'dist/index.js'))) {
    throw new Error(`${EXAMPLE}/dist/index.js is missing: build first (pnpm exec tsc -b examples/plugin-rosenbrock)`);
  }
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-project-'));
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(EXAMPLE, path.join(project, 'node_modules', 'l2l-plugin-rosenbrock'), 'dir');
  fakePackage('not-a-plugin', { 'index.js': 'module.exports = { hello: 1 };\n' });
  fakePackage('throws-on-load', { 'index.js': "throw new Error('kaboom at load');\n" });
  fakePackage('throws-on-register', { 'index.js': handMadePlugin("throw new Error('cannot register');") });
  fakePackage('unbuilt-plugin', {}, { l2l: { plugin: './dist/plugin.js' } });
  // (Its require('@l2l/core') resolves through jest's module mapping; a real plugin depends on @l2l/core.)
  fakePackage('duplicate-type', {
    'index.js': handMadePlugin(`
      const { componentsModule } = require('@l2l/core');
      return [componentsModule({ source: 'duplicate-type', components: [{ kind: 'optimizee', type: 'rosenbrock', description: 'Again',
        schema: { type: 'object', additionalProperties: false, properties: {} }, create() {} }] })];`),
  });
  fs.mkdirSync(path.join(project, 'configs'));
});

afterAll(() => {
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe('plugins listed in a config', () => {
  it('l2l list --config shows the plugin\'s components', async () => {
    const file = config('exp.json', ['l2l-plugin-rosenbrock']);
    const r = await run(['list', '--config', file], project);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/rosenbrock\s+l2l-plugin-rosenbrock\s+Rosenbrock functions/);
    expect(r.stdout).toMatch(/defaults: dims=2, a=\[0.5,1.5\], b=\[2,20\]/);
    expect(r.stdout).toContain('Plugins: l2l-plugin-rosenbrock');
    // Not without the config.
    expect((await run(['list'], project)).stdout).not.toContain('rosenbrock');
  });

  it('l2l list --json --config lists the component and the plugin', async () => {
    const r = await run(['list', '--json', '--config', config('exp.json', ['l2l-plugin-rosenbrock'])], project);
    expect(r.code).toBe(0);
    const { components, plugins } = JSON.parse(r.stdout);
    expect(components).toContainEqual(expect.objectContaining({ kind: 'optimizee', type: 'rosenbrock', source: 'l2l-plugin-rosenbrock', defaults: expect.objectContaining({ dims: 2 }) }));
    expect(plugins).toEqual([
      { name: 'l2l-plugin-rosenbrock', package: 'l2l-plugin-rosenbrock', file: path.join(fs.realpathSync(EXAMPLE), 'dist/index.js'), description: expect.any(String) },
    ]);
  });

  it('l2l validate passes, and checks the plugin component\'s options', async () => {
    expect(await run(['validate', config('exp.json', ['l2l-plugin-rosenbrock'])], project)).toEqual({ code: 0, stdout: 'exp.json: ok\n', stderr: '' });
    const bad = config('bad.json', ['l2l-plugin-rosenbrock'], { optimizee: { type: 'rosenbrock', options: { dims: 1 } } });
    expect(await run(['validate', bad], project)).toEqual({ code: 1, stdout: '', stderr: 'bad.json: optimizee "rosenbrock": dims must be an integer ≥ 2, got 1\n' });
  });

  it('resolves plugins from the config file\'s directory, not the working directory', async () => {
    config('configs/exp.json', ['l2l-plugin-rosenbrock']);
    const r = await run(['validate', path.join(project, 'configs/exp.json')], os.tmpdir());
    expect(r.code).toBe(0);
  });

  it('l2l schema --config includes the plugin\'s options', async () => {
    const r = await run(['schema', '--config', config('exp.json', ['l2l-plugin-rosenbrock'])], project);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.optimizee.properties.type.enum).toContain('rosenbrock');
  });

  it('without the plugin, its type is unknown', async () => {
    const r = await run(['validate', config('no-plugin.json', [])], project);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^no-plugin.json: optimizee: unknown optimizee type "rosenbrock"/);
  });

  it.each([
    ['a missing package', 'l2l-plugin-nope', /^f.json: plugin "l2l-plugin-nope" is not installed \(looked in node_modules from .*\); install it with: npm install l2l-plugin-nope$/],
    ['a package that exports no plugin', 'not-a-plugin', /^f.json: plugin "not-a-plugin": .*index.js does not export an l2l plugin \(export default definePlugin\(\{...\}\) from @l2l\/core\)$/],
    ['a plugin that throws on load', 'throws-on-load', /^f.json: plugin "throws-on-load" failed to load: kaboom at load$/],
    ['a plugin that throws when registering', 'throws-on-register', /^f.json: plugin "throws-on-register" failed to register: cannot register$/],
    ['a plugin package that was not built', 'unbuilt-plugin', /^f.json: plugin "unbuilt-plugin": its package.json points at .\/dist\/plugin.js, which does not exist .*; was the package built\?$/],
    ['a plugin that registers a type twice', 'duplicate-type', /^f.json: optimizee "rosenbrock" is registered by both l2l-plugin-rosenbrock and duplicate-type$/],
  ])('%s: one clear error line, exit 1', async (_what, plugin, message) => {
    const file = config('f.json', ['l2l-plugin-rosenbrock', plugin]);
    for (const argv of [['validate', file], ['list', '--config', file], ['schema', '--config', file]]) {
      const r = await run(argv, project);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.endsWith('\n')).toBe(true);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(message);
    }
  });
});
