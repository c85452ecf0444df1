import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { pretrainedDir } from '@l2l/pretrained';
import { main } from '../main';

/** `l2l train` and `l2l eval` end to end on the real built-in components, at toy sizes. */
async function run(argv: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

let dir: string;
const experiment = (epochs: number) => ({
  name: 'toy',
  backend: 'cpu',
  seed: 3,
  optimizee: { type: 'quadratic', options: { dims: 3, batch: 2 } },
  metaOptimizer: { type: 'lstm', options: { hidden: 4 } },
  training: { epochs, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 2 },
  evaluation: { steps: 6, tasks: 3, baselines: [{ type: 'sgd' }, { type: 'adam' }], tuning: { learningRates: [0.01, 0.1, 1], tasks: 2 } },
});

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-cli-train-'));
  fs.writeFileSync(path.join(dir, 'toy.json'), JSON.stringify(experiment(2)));
  fs.writeFileSync(path.join(dir, 'toy3.json'), JSON.stringify(experiment(3)));
  const { metaOptimizer, ...noMeta } = experiment(2);
  void metaOptimizer;
  fs.writeFileSync(path.join(dir, 'baselines-only.json'), JSON.stringify(noMeta));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('l2l train', () => {
  it('meta-trains, prints the backend and one line per epoch, and writes the checkpoint directory', async () => {
    const r = await run(['train', 'toy.json', '--out', 'run'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backend: cpu \(@tensorflow\/tfjs-backend-cpu, tfjs-core /);
    expect(r.stdout).toMatch(/epoch 1\/2 {2}meta-loss [0-9.e+-]+ {2}final loss [0-9.e+-]+ {2}validation [0-9.e+-]+ \(best\)/);
    expect(r.stdout).toMatch(/done: 2 epochs; best validation [0-9.e+-]+ at epoch [12]; 0 episodes skipped; checkpoint in run/);
    expect(fs.readdirSync(path.join(dir, 'run')).sort()).toEqual(['.l2l-output', 'best', 'experiment.json', 'latest', 'log.csv']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'run', 'latest', 'meta-optimizer.json'), 'utf8'))).toMatchObject({ type: 'lstm', options: { hidden: 4, layers: 2 } });
  });

  it('refuses to overwrite a run, resumes it with more epochs, and starts afresh with --force', async () => {
    const again = await run(['train', 'toy.json', '--out', 'run'], dir);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe('--out run already holds a training run; pass --resume to continue it, --force to discard it, or choose another --out');
    const resumed = await run(['train', 'toy3.json', '--out', 'run', '--resume'], dir);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/epochs 3\.\.3/);
    expect(resumed.stdout).not.toMatch(/epoch 1\/3/);
    expect(fs.readFileSync(path.join(dir, 'run', 'log.csv'), 'utf8').trim().split('\n')).toHaveLength(4);
    const both = await run(['train', 'toy.json', '--out', 'run', '--resume', '--force'], dir);
    expect(both.code).toBe(1);
    expect(both.stderr.trim()).toBe('--resume and --force exclude each other');
    const fresh = await run(['train', 'toy.json', '--out', 'run', '--force'], dir);
    expect(fresh.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'run', 'log.csv'), 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('prints the learning-rate schedule and its factor on each epoch line', async () => {
    const e = experiment(2);
    fs.writeFileSync(path.join(dir, 'scheduled.json'), JSON.stringify({ ...e, training: { ...e.training, learningRateSchedule: { type: 'linear', options: { final: 0.5 } } } }));
    const r = await run(['train', 'scheduled.json', '--out', 'run-scheduled'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('learning-rate schedule: linear(to 0.5× at the end of the run) over 8 outer steps\n');
    // 8 outer steps: epoch 1 ends at step 3 (1 − 0.5·3/8 = 0.8125), epoch 2 at step 7 (0.5625).
    expect(r.stdout).toMatch(/epoch 1\/2 .* lr ×0\.813 /);
    expect(r.stdout).toMatch(/epoch 2\/2 .* lr ×0\.563 /);
  });

  it('needs a metaOptimizer and an --out', async () => {
    const none = await run(['train', 'baselines-only.json', '--out', 'x'], dir);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe('the experiment has no metaOptimizer to train');
    expect((await run(['train', 'toy.json'], dir)).code).toBe(2);
  });
});

describe('l2l eval', () => {
  it('compares the learned optimizer with tuned baselines and writes results, curves, plot and table', async () => {
    const before = tf.memory().numTensors;
    const r = await run(['eval', 'toy.json', '--optimizer', 'run', '--out', 'eval'], dir);
    expect(r.code).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    const files = fs.readdirSync(path.join(dir, 'eval')).sort();
    expect(files).toEqual(['.l2l-output', 'curves.csv', 'loss-curves.svg', 'results.json', 'results.md']);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'eval', 'results.json'), 'utf8'));
    expect(results.optimizers.map((o: { kind: string }) => o.kind)).toEqual(['learned', 'sgd', 'adam']);
    expect(results.optimizers[0].curve.mean).toHaveLength(7);
    expect(results.tuning).toHaveLength(2);
    expect(r.stdout).toContain('| **lstm** (learned) | — |');
    expect(r.stdout).toMatch(/\| sgd \| (0\.01000|0\.1000|1\.000) \|/);
    expect(fs.readFileSync(path.join(dir, 'eval', 'loss-curves.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('compares several learned optimizers when --optimizer is repeated', async () => {
    const r = await run(['eval', 'toy.json', '--optimizer', 'run', '--optimizer', 'run/latest', '--out', 'eval-2', '--tasks', '2'], dir);
    expect(r.code).toBe(0);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'eval-2', 'results.json'), 'utf8'));
    expect(results.optimizers.map((o: { kind: string }) => o.kind)).toEqual(['learned', 'learned', 'sgd', 'adam']);
    // Two checkpoints of one type are told apart by how they were named on the command line.
    expect(results.optimizers.slice(0, 2).map((o: { name: string }) => o.name)).toEqual(['lstm (run)', 'lstm (run/latest)']);
    expect(r.stdout).toContain('| **lstm (run)** (learned) |');
    expect(r.stdout).toContain('| **lstm (run/latest)** (learned) |');
    expect(new Set(results.comparisons.map((c: { learned: string }) => c.learned))).toEqual(new Set(['lstm (run)', 'lstm (run/latest)']));
  });

  it('runs the baselines alone without --optimizer, and honours --steps and --tasks', async () => {
    const r = await run(['eval', 'toy.json', '--out', 'eval-b', '--steps', '4', '--tasks', '2'], dir);
    expect(r.code).toBe(0);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'eval-b', 'results.json'), 'utf8'));
    expect(results.optimizers.map((o: { kind: string }) => o.kind)).toEqual(['sgd', 'adam']);
    expect(results.steps).toBe(4);
    expect(results.tasks).toBe(2);
  });

  it('--split validation evaluates on validation-split tasks and says so; another split is refused', async () => {
    const r = await run(['eval', 'toy.json', '--out', 'eval-v', '--steps', '4', '--tasks', '2', '--split', 'validation'], dir);
    expect(r.code).toBe(0);
    const results = JSON.parse(fs.readFileSync(path.join(dir, 'eval-v', 'results.json'), 'utf8'));
    expect(results.split).toBe('validation');
    const test = JSON.parse(fs.readFileSync(path.join(dir, 'eval-b', 'results.json'), 'utf8'));
    expect(results.optimizers[0].curve.mean[0]).not.toBe(test.optimizers[0].curve.mean[0]);
    expect(fs.readFileSync(path.join(dir, 'eval-v', 'results.md'), 'utf8')).toContain('2 validation-split tasks (for choosing settings');
    const bad = await run(['eval', 'toy.json', '--out', 'eval-x', '--split', 'train'], dir);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.split('\n')[0]).toBe("error: option '--split <split>' argument 'train' is invalid. Allowed choices are test, validation.");
  });

  it('takes a pretrained optimizer by name (the same results as its directory), and names the known ones for an unknown name', async () => {
    const byName = await run(['eval', 'toy.json', '--optimizer', 'pretrained:quadratic-lstm', '--out', 'eval-p', '--tasks', '2', '--steps', '5'], dir);
    expect(byName.stderr).not.toMatch(/error/i);
    expect(byName.code).toBe(0);
    const byDir = await run(['eval', 'toy.json', '--optimizer', pretrainedDir('quadratic-lstm'), '--out', 'eval-d', '--tasks', '2', '--steps', '5'], dir);
    expect(byDir.code).toBe(0);
    const learned = (out: string) => JSON.parse(fs.readFileSync(path.join(dir, out, 'results.json'), 'utf8')).optimizers[0];
    expect(learned('eval-p')).toMatchObject({ kind: 'learned', name: 'lstm' });
    expect(learned('eval-p').curve.mean).toEqual(learned('eval-d').curve.mean);
    const unknown = await run(['eval', 'toy.json', '--optimizer', 'pretrained:nope', '--out', 'e'], dir);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.trim()).toMatch(/^pretrained optimizer "nope" does not exist \(known: .*quadratic-lstm.*\)$/);
  });

  it('reports a missing checkpoint and bad numbers clearly', async () => {
    const missing = await run(['eval', 'toy.json', '--optimizer', 'nowhere', '--out', 'e'], dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/nowhere: no checkpoint here/);
    const bad = await run(['eval', 'toy.json', '--out', 'e', '--steps', 'x'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--steps <n>.*must be an integer ≥ 1/);
  });
});
