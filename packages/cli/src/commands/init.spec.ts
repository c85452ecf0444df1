import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../main';

/**
 * `l2l init plugin` writes a package that type-checks and passes its own tests (with its own jest config) right
 * away. It is written inside the workspace so that it finds @l2l/core (built: run after `pnpm build`), as an
 * npm install would give it; install.spec.ts does the same outside the workspace from the packed tarballs.
 */
const root = path.join(__dirname, '..', '..', '..', '..');
const work = path.join(__dirname, '..', '..', `.init-test-${process.pid}`);

async function l2l(args: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { cwd, stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

describe('l2l init plugin', () => {
  it('scaffolds a plugin that type-checks and passes its contract-check tests', async () => {
    fs.mkdirSync(work, { recursive: true });
    const r = await l2l(['init', 'plugin', '@me/l2l-plugin-foo'], work);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const dir = path.join(work, 'l2l-plugin-foo');
    expect(r.stdout).toContain(`wrote @me/l2l-plugin-foo to ${dir}`);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('@me/l2l-plugin-foo');
    expect(pkg.l2l.plugin).toBe('./dist/index.js');
    for (const f of ['task-family', 'baseline', 'learned-optimizer', 'index']) expect(fs.existsSync(path.join(dir, 'src', `${f}.spec.ts`))).toBe(true);
    const index = fs.readFileSync(path.join(dir, 'src', 'index.spec.ts'), 'utf8');
    expect(index).toContain("'meta-optimizer:foo-scaled-momentum', 'optimizee:foo-parabolas', 'optimizer:foo-sign-sgd'");
    expect(fs.readFileSync(path.join(dir, 'src', 'index.ts'), 'utf8')).not.toMatch(/example/);

    const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    node([path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
    expect(fs.existsSync(path.join(dir, 'dist', 'index.js'))).toBe(true);
    const out = execFileSync(process.execPath, [path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--json'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const result = JSON.parse(out) as { success: boolean; numPassedTests: number; numFailedTests: number };
    expect(result).toMatchObject({ success: true, numFailedTests: 0 });
    expect(result.numPassedTests).toBe(6);
  }, 300_000);

  it('refuses a bad name, a non-empty directory and an unknown kind, in one line each', async () => {
    fs.mkdirSync(path.join(work, 'full'), { recursive: true });
    fs.writeFileSync(path.join(work, 'full', 'x'), '');
    expect((await l2l(['init', 'plugin', 'Bad Name'], work)).stderr).toMatch(/^plugin name "Bad Name": not a valid npm package name/);
    expect((await l2l(['init', 'plugin', 'l2l-plugin-x', '--dir', 'full'], work)).stderr).toBe(`${path.join(work, 'full')}: exists and is not empty; choose another --dir\n`);
    expect((await l2l(['init', 'preset', 'x'], work)).stderr).toBe('l2l init: can scaffold "plugin", not "preset"\n');
  });
});
