import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** End to end: the built binary, as a user runs it (`pnpm test` builds before jest, so dist exists). */
const BIN = path.resolve(__dirname, '../dist/bin.js');

function l2l(args: string[], cwd = path.resolve(__dirname, '../../..')) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the l2l binary', () => {
  beforeAll(() => {
    if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: build first (pnpm build)`);
  });

  it('starts with a node shebang', () => {
    expect(fs.readFileSync(BIN, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('l2l list --json prints the registered components (exit 0)', () => {
    const r = l2l(['list', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const { components, plugins } = JSON.parse(r.stdout);
    expect(Array.isArray(components)).toBe(true);
    expect(plugins).toEqual([]);
    for (const c of components) {
      // `kernel`: learned optimizers only, their fused kernel or null.
      const { kernel, ...rest } = c;
      expect(c.kind === 'meta-optimizer' ? kernel === null || typeof kernel === 'string' : kernel === undefined).toBe(true);
      expect(rest).toEqual({ kind: expect.any(String), type: expect.any(String), description: expect.any(String), source: expect.any(String), defaults: expect.any(Object), schema: expect.any(Object) });
    }
  });

  it('exits 1 with one line for a user error and 2 for a usage error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-bin-'));
    try {
      fs.writeFileSync(path.join(dir, 'exp.json'), JSON.stringify({ optimizee: { type: 'no-such-family' } }));
      const bad = l2l(['validate', 'exp.json'], dir);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe('');
      expect(bad.stderr).toMatch(/^exp.json: optimizee: unknown optimizee type "no-such-family".*\n$/);
      const usage = l2l(['lsit'], dir);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toMatch(/error: unknown command 'lsit'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
