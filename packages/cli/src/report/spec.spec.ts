import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { JsonSchema } from '@l2l/core';
import { loadReportSpec, reportSpecSchema } from './spec';

let dir: string;
const write = (file: string, value: unknown) => {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), JSON.stringify(value));
};
const spec = (extra: Record<string, unknown>) => ({ title: 'T', results: 'out/results', evaluations: [{ name: 'e', config: 'e.json' }], ...extra });
const load = (extra: Record<string, unknown>) => {
  write('spec.json', spec(extra));
  return loadReportSpec('spec.json', dir);
};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-report-spec-'));
  // Run directories as `l2l train` leaves them: experiment.json records the meta-optimizer.
  write('runs/a/experiment.json', { metaOptimizer: { type: 'rnnprop', options: {} } });
  write('runs/b/experiment.json', { metaOptimizer: { type: 'rnnprop' } });
  write('runs/c/experiment.json', { metaOptimizer: { type: 'lstm' } });
  write('lstm.json', { metaOptimizer: { type: 'multiscale-adam' } });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('report spec: checkpoints', () => {
  it('reads `checkpoint` as a one-element list, named by its experiment.json', () => {
    const s = load({ checkpoint: { dir: 'runs/c', config: 'lstm.json' } });
    expect(s.resolved.checkpoints).toEqual([
      { name: 'lstm', dir: path.join(dir, 'runs/c'), config: path.join(dir, 'lstm.json'), field: 'checkpoint', specDir: 'runs/c' },
    ]);
    expect(load({}).resolved.checkpoints).toEqual([]);
  });

  it('names each checkpoint: its name, else experiment.json\'s meta-optimizer, else its config\'s, else the directory', () => {
    const s = load({
      checkpoints: [
        { dir: 'runs/a' },
        { name: 'second-rnnprop', dir: 'runs/b' },
        { dir: 'runs/not-yet', config: 'lstm.json' },
        { dir: 'runs/plain-dir' },
      ],
    });
    expect(s.resolved.checkpoints.map((c) => [c.name, c.field])).toEqual([
      ['rnnprop', 'checkpoints[0]'],
      ['second-rnnprop', 'checkpoints[1]'],
      ['multiscale-adam', 'checkpoints[2]'],
      ['plain-dir', 'checkpoints[3]'],
    ]);
    expect(s.resolved.checkpoints[2]!.config).toBe(path.join(dir, 'lstm.json'));
    expect(s.resolved.checkpoints[3]!.config).toBeNull();
  });

  it('refuses both fields, twice the same name, an empty list, bad names and unknown fields', () => {
    expect(() => load({ checkpoint: { dir: 'runs/c' }, checkpoints: [{ dir: 'runs/a' }] })).toThrow(
      'spec.json: give "checkpoint" (one learned optimizer) or "checkpoints" (a list), not both',
    );
    expect(() => load({ checkpoints: [{ dir: 'runs/c' }, { dir: 'runs/a' }, { dir: 'runs/b' }] })).toThrow(
      'spec.json: checkpoints[1] and checkpoints[2] are both named "rnnprop"; set "name" on them to tell them apart on the page and in file names',
    );
    expect(() => load({ checkpoints: [{ name: 'x', dir: 'runs/a' }, { name: 'x', dir: 'runs/b' }] })).toThrow('both named "x"');
    expect(() => load({ checkpoints: [{ dir: 'runs/a' }, { name: 'rnnprop', dir: 'runs/c' }] })).toThrow('both named "rnnprop"');
    expect(() => load({ checkpoints: [] })).toThrow('spec.json: checkpoints must have at least 1 items, got 0');
    expect(() => load({ checkpoints: [{ name: 'Not Kebab', dir: 'runs/a' }] })).toThrow(/spec\.json: checkpoints\[0\]\.name: must match pattern/);
    expect(() => load({ checkpoints: [{ dir: 'runs/a', extra: 1 }] })).toThrow('unknown field "checkpoints[0].extra"');
    expect(() => load({ checkpoints: [{ name: 'a' }] })).toThrow('missing field "checkpoints[0].dir"');
    expect(() => load({ checkpoints: [{ dir: 'runs/Odd_Name' }] })).toThrow(
      'spec.json: checkpoints[0]: its default name "Odd_Name" is not kebab-case (a-z, 0-9, -); set "name"',
    );
  });

  it('describes every property of the schema', () => {
    const undescribed: string[] = [];
    const walk = (s: JsonSchema, at: string) => {
      for (const [k, p] of Object.entries((s.properties ?? {}) as Record<string, JsonSchema>)) {
        if (typeof p.description !== 'string' || !p.description) undescribed.push(`${at}${k}`);
        walk(p, `${at}${k}.`);
        if (p.items) walk(p.items as JsonSchema, `${at}${k}[].`);
      }
      if (s.properties) expect(s.additionalProperties).toBe(false);
    };
    walk(reportSpecSchema, '');
    expect(undescribed).toEqual([]);
  });
});
