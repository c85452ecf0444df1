import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import { parseExperiment, resolveExperiment } from '../config/experiment';
import { TinyFamily, TinyMeta } from '../engine/engine.fixture';
import { defineComponent } from '../registry/component';
import { ComponentRegistry } from '../registry/registry';
import { evaluateExperiment, resultsTable, writeEvaluation } from './evaluate';
import { trainExperiment } from './train';
import { pairedComparison } from './compare';

const registry = new ComponentRegistry([
  {
    source: 'test',
    components: [
      defineComponent<{ dims: number }>()({
        kind: 'optimizee',
        type: 'tiny',
        description: 'Tiny least squares.',
        schema: { type: 'object', additionalProperties: false, properties: { dims: { type: 'integer', minimum: 1, default: 3, description: 'Dimensions.' } } },
        create: (o) => new TinyFamily(o.dims),
      }),
      defineComponent<{ a: number }>()({
        kind: 'meta-optimizer',
        type: 'tiny-meta',
        description: 'Two-weight learned optimizer.',
        schema: { type: 'object', additionalProperties: false, properties: { a: { type: 'number', default: -3, description: 'Initial log step size.' } } },
        create: (o) => new TinyMeta(o.a),
      }),
      defineComponent<{ learningRate: number }>()({
        kind: 'optimizer',
        type: 'sgd',
        description: 'Plain gradient descent.',
        schema: { type: 'object', additionalProperties: false, properties: { learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Step size.' } } },
        create: (o) => ({
          name: `sgd(lr=${o.learningRate})`,
          init: (params) => ({ params, slots: null, step: 0 }),
          update: (s, g) => ({ params: Object.fromEntries(Object.entries(s.params).map(([k, p]) => [k, tf.sub(p, tf.mul(o.learningRate, g[k]!))])), slots: null, step: s.step + 1 }),
        }),
      }),
    ],
  },
]);

const experiment = (epochs: number) =>
  resolveExperiment(
    parseExperiment(
      {
        name: 'tiny',
        seed: 4,
        optimizee: { type: 'tiny' },
        metaOptimizer: { type: 'tiny-meta' },
        training: { epochs, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 2, learningRate: 0.05 },
        evaluation: { steps: 8, tasks: 3, baselines: [{ type: 'sgd' }], tuning: { learningRates: [0.01, 0.1, 0.3], tasks: 2 } },
      },
      'tiny.json',
    ),
    registry,
    'tiny.json',
  );

let dir: string;
beforeAll(async () => {
  await useBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-pipeline-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('trainExperiment', () => {
  it('writes a complete checkpoint directory and resumes it', async () => {
    const out = path.join(dir, 'run');
    const r = await trainExperiment(experiment(2), registry, { outDir: out, baseDir: dir });
    expect(r.epochs).toBe(2);
    expect(fs.readdirSync(out).sort()).toEqual(['best', 'experiment.json', 'latest', 'log.csv']);
    expect(fs.readdirSync(path.join(out, 'latest')).sort()).toEqual(['adam.bin', 'adam.json', 'meta-optimizer.json', 'trainer.json', 'weights.bin', 'weights.json']);
    const log = fs.readFileSync(path.join(out, 'log.csv'), 'utf8').trim().split('\n');
    expect(log[0]).toBe('epoch,meta_loss,final_loss,validation_loss,best,skipped,seconds');
    expect(log).toHaveLength(3);

    await expect(trainExperiment(experiment(2), registry, { outDir: out, baseDir: dir })).rejects.toThrow(/already holds a training run; pass --resume/);
    const changed = experiment(3);
    changed.seed = 5;
    await expect(trainExperiment(changed, registry, { outDir: out, baseDir: dir, resume: true })).rejects.toThrow(/differs from the checkpoint's experiment in seed \(only training.epochs, training.workers and training.kernel may change on --resume\)/);

    // A checkpoint written before an option existed resumes: the saved config is resolved again (defaults added).
    const savedFile = path.join(out, 'experiment.json');
    const saved = JSON.parse(fs.readFileSync(savedFile, 'utf8'));
    delete saved.training.nonFinite;
    delete saved.optimizee.options.dims;
    fs.writeFileSync(savedFile, JSON.stringify(saved));
    const before = tf.memory().numTensors;
    const resumed = await trainExperiment(experiment(3), registry, { outDir: out, baseDir: dir, resume: true });
    expect(resumed.epochs).toBe(3);
    expect(resumed.reports.map((x) => x.epoch)).toEqual([3]);
    expect(fs.readFileSync(path.join(out, 'log.csv'), 'utf8').trim().split('\n')).toHaveLength(4);
    expect(tf.memory().numTensors).toBe(before);

    // Same as training 3 epochs in one go.
    const straight = path.join(dir, 'straight');
    await trainExperiment(experiment(3), registry, { outDir: straight, baseDir: dir });
    expect(fs.readFileSync(path.join(straight, 'latest', 'weights.bin'))).toEqual(fs.readFileSync(path.join(out, 'latest', 'weights.bin')));
  });
});

describe('trainExperiment when something breaks', () => {
  it('reports the error that stopped training, not a later one while freeing', async () => {
    class Failing extends TinyFamily {
      override build(): never {
        throw new Error('memory access out of bounds (the first error)');
      }
      dispose(): void {
        throw new Error('freeing failed too');
      }
    }
    const failing = new ComponentRegistry([
      {
        source: 'test',
        components: [
          ...registry.list().filter((c) => c.kind !== 'optimizee'),
          defineComponent<Record<string, never>>()({
            kind: 'optimizee',
            type: 'tiny',
            description: 'Fails to build its tasks and to free itself.',
            schema: { type: 'object', additionalProperties: false, properties: {} },
            create: () => new Failing(3),
          }),
        ],
      },
    ]);
    const e = resolveExperiment(parseExperiment({ optimizee: { type: 'tiny' }, metaOptimizer: { type: 'tiny-meta' }, training: { epochs: 1, episodesPerEpoch: 1, steps: 3, unroll: 3 }, evaluation: { baselines: [] } }, 'f.json'), failing, 'f.json');
    await expect(trainExperiment(e, failing, { outDir: path.join(dir, 'run-failing'), baseDir: dir })).rejects.toThrow('the first error');
  });
});

describe('evaluateExperiment', () => {
  it('evaluates the learned optimizer and tuned baselines on the same held-out tasks and writes the results', async () => {
    const out = path.join(dir, 'run-eval');
    await trainExperiment(experiment(2), registry, { outDir: out, baseDir: dir });
    const before = tf.memory().numTensors;
    const results = evaluateExperiment(experiment(2), registry, { checkpoint: out, baseDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    expect(results.optimizers.map((o) => o.kind)).toEqual(['learned', 'sgd']);
    const [learned, sgd] = results.optimizers;
    expect(learned!.curve.mean).toHaveLength(9);
    expect(sgd!.learningRate).toBe(results.tuning[0]!.result.best);
    // Every optimizer starts from the same held-out parameters.
    expect(learned!.curve.mean[0]).toBeCloseTo(sgd!.curve.mean[0]!, 5);
    writeEvaluation(path.join(dir, 'eval'), results);
    expect(fs.readdirSync(path.join(dir, 'eval')).sort()).toEqual(['curves.csv', 'results.json', 'results.md']);
    const table = resultsTable(results);
    expect(table).toMatch(/\| \*\*tiny-meta\*\* \(learned\) \| — \| [0-9.e+-]+ ± [0-9.e+-]+ \| [0-9.e+-]+ ± [0-9.e+-]+ \| 0\/3 \|/);
    expect(table.split('\n')[0]).toContain('final loss (step 8) (ranked by)');
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'eval', 'results.json'), 'utf8'));
    expect(saved.optimizers).toHaveLength(2);
    // Per-task values are kept, and the comparison is the paired one computed from them.
    expect(saved.optimizers[0].perTask.finalMean).toHaveLength(3);
    expect(saved.rankBy).toBe('finalMean');
    const want = pairedComparison(learned!.perTask.finalMean, sgd!.perTask.finalMean);
    expect(saved.comparisons[0]).toEqual({ learned: 'tiny-meta', baseline: sgd!.name, measure: 'finalMean', ...want });
    const md = fs.readFileSync(path.join(dir, 'eval', 'results.md'), 'utf8');
    expect(md).toContain('## Learned vs tuned baselines');
    expect(md).toContain(`| tiny-meta | ${sgd!.name} | final loss (step 8) (ranked by) |`);
    expect(md).toMatch(new RegExp(`- tiny-meta (wins against|ties with|loses to) ${sgd!.name.replace(/[()]/g, '\\$&')} on final loss \\(step 8\\)`));
  });

  it('--split validation: the same optimizers on validation-split tasks (tuning still on training tasks), without test metrics', async () => {
    const out = path.join(dir, 'run-eval-validation');
    await trainExperiment(experiment(1), registry, { outDir: out, baseDir: dir });
    const sampled: string[] = [];
    const spied = new ComponentRegistry([
      {
        source: 'test',
        components: [
          ...registry.list().filter((c) => c.type !== 'tiny'),
          defineComponent<{ dims: number }>()({
            kind: 'optimizee',
            type: 'tiny',
            description: 'Tiny least squares, recording the splits it samples.',
            schema: { type: 'object', additionalProperties: false, properties: { dims: { type: 'integer', minimum: 1, default: 3, description: 'Dimensions.' } } },
            create: (o) => {
              const family = new TinyFamily(o.dims);
              const sample = family.sample.bind(family);
              family.sample = (seed, split) => (sampled.push(split), sample(seed, split));
              return family;
            },
          }),
        ],
      },
    ]);
    const test = evaluateExperiment(experiment(1), spied, { checkpoint: out, baseDir: dir });
    expect(sampled.filter((s) => s !== 'train')).toEqual(Array(6).fill('test'));
    sampled.length = 0;
    const validation = evaluateExperiment(experiment(1), spied, { checkpoint: out, baseDir: dir, split: 'validation' });
    // 3 tasks for the learned optimizer and 3 for sgd; sgd's tuning grid (3 rates × 2 tasks) and the pre-flight on training tasks.
    expect(sampled.filter((s) => s !== 'train')).toEqual(Array(6).fill('validation'));
    expect(sampled.filter((s) => s === 'train').length).toBeGreaterThanOrEqual(6);
    expect(validation.split).toBe('validation');
    expect(test.split).toBeUndefined();
    expect(validation.optimizers[0]!.curve.mean[0]).not.toBeCloseTo(test.optimizers[0]!.curve.mean[0]!, 5);
    expect(validation.tuning[0]!.result.best).toBe(test.tuning[0]!.result.best);
    writeEvaluation(path.join(dir, 'eval-validation'), validation);
    expect(fs.readFileSync(path.join(dir, 'eval-validation', 'results.md'), 'utf8')).toContain('3 validation-split tasks (for choosing settings; no test-split task and no test metric) of `tiny`');
    expect(() => evaluateExperiment(experiment(1), registry, { baseDir: dir, split: 'train' as 'test' })).toThrow('evaluation split must be "test" or "validation", got "train"');
  });
});
