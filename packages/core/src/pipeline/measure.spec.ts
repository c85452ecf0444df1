import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import { parseExperiment, resolveExperiment } from '../config/experiment';
import { estimateRunMemory, preflightExperiment, preflightNote, unestimatedComponents } from '../config/preflight';
import { ConfigError, errorProblems } from '../schema/validate';
import { TinyFamily, TinyMeta } from '../engine/engine.fixture';
import { defineComponent } from '../registry/component';
import { ComponentRegistry } from '../registry/registry';
import { evaluateExperiment } from './evaluate';
import { measureUnestimated } from './measure';
import { trainExperiment } from './train';

/**
 * Components without an `estimate` (what a plugin may register): the pre-flight says it cannot size them from the
 * config, and measures them once built, so an oversized run is still refused before its first step.
 */
const dims = { type: 'object', additionalProperties: false, properties: { dims: { type: 'integer', minimum: 1, default: 5, description: 'Dimensions.' } } } as const;
const open = { type: 'object', additionalProperties: false, properties: {} } as const;
const registry = new ComponentRegistry([
  {
    source: 'a-plugin',
    components: [
      defineComponent<{ dims: number }>()({ kind: 'optimizee', type: 'unsized', description: 'TinyFamily, no estimate.', schema: dims, create: (o) => new TinyFamily(o.dims) }),
      defineComponent<{ dims: number }>()({
        kind: 'optimizee',
        type: 'sized',
        description: 'TinyFamily with its estimate.',
        schema: dims,
        create: (o) => new TinyFamily(o.dims),
        estimate: ({ dims: n }) => ({ coordinates: n + 2, bytes: 4 * (n * n + 2 * n + 2) }),
      }),
      defineComponent<Record<string, never>>()({ kind: 'meta-optimizer', type: 'tiny-meta', description: 'TinyMeta, no estimate.', schema: open, create: () => new TinyMeta() }),
      // A tape of a terabyte per coordinate and step: any run is too large once the coordinates are known.
      defineComponent<Record<string, never>>()({ kind: 'meta-optimizer', type: 'huge-tape', description: 'TinyMeta, 1 TB taped per step.', schema: open, create: () => new TinyMeta(), estimate: () => ({ weights: 2, stepBytes: 1e12 }) }),
    ],
  },
]);

const experiment = (optimizee: string, meta: string, n = 5) =>
  resolveExperiment(
    parseExperiment(
      {
        backend: 'cpu',
        seed: 1,
        optimizee: { type: optimizee, options: { dims: n } },
        metaOptimizer: { type: meta },
        training: { epochs: 1, episodesPerEpoch: 1, steps: 4, unroll: 2, validateEvery: 1, validationTasks: 1 },
        evaluation: { steps: 2, tasks: 1, baselines: [] },
      },
      'x.json',
    ),
    registry,
    'x.json',
  );

let dir: string;
beforeAll(async () => {
  await useBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-measure-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('components without a size estimate', () => {
  it('are named by the pre-flight, with their source', () => {
    expect(unestimatedComponents(experiment('unsized', 'tiny-meta'), registry, 'all')).toEqual(['optimizee "unsized" (a-plugin)', 'meta-optimizer "tiny-meta" (a-plugin)']);
    expect(unestimatedComponents(experiment('unsized', 'tiny-meta'), registry, 'eval')).toEqual(['optimizee "unsized" (a-plugin)']);
    expect(unestimatedComponents(experiment('sized', 'huge-tape'), registry, 'all')).toEqual([]);
    expect(preflightNote(experiment('sized', 'huge-tape'), registry, 'train')).toBe('');
    expect(preflightNote(experiment('unsized', 'huge-tape'), registry, 'train')).toMatch(/^optimizee "unsized" \(a-plugin\) gives no size estimate: the pre-flight cannot check its memory from the config; it is measured once built/);
  });

  it('are measured on one built task: coordinates, tensor bytes, weights and state per coordinate, as derived by hand', () => {
    const family = new TinyFamily(5);
    const meta = new TinyMeta();
    const tensors = tf.memory().numTensors;
    // Task: W 5×5 and y 5 floats; parameters x (5) and v (2): 7 coordinates. TinyMeta: 2 weights, its state a copy of
    // the parameters and a zero slot each: 8 bytes per coordinate.
    expect(measureUnestimated(experiment('unsized', 'tiny-meta'), registry, family, meta)).toEqual({
      optimizee: { coordinates: 7, bytes: 4 * (25 + 5 + 7) },
      metaOptimizer: { weights: 2, stateBytes: 8 },
    });
    expect(measureUnestimated(experiment('sized', 'tiny-meta'), registry, family, meta)).toEqual({ metaOptimizer: { weights: 2, stateBytes: 8 } });
    // With an estimate for each, nothing is built.
    expect(measureUnestimated(experiment('sized', 'huge-tape'), registry, family, meta)).toBeUndefined();
    expect(tf.memory().numTensors).toBe(tensors);
    meta.dispose();
  });

  it('measured sizes stand in for a missing estimate only: a component\'s own estimate wins', () => {
    const measured = { optimizee: { coordinates: 1e9, bytes: 0 } };
    expect(estimateRunMemory(experiment('sized', 'huge-tape'), registry, measured)).toEqual(estimateRunMemory(experiment('sized', 'huge-tape'), registry));
    const unsized = experiment('unsized', 'huge-tape');
    // Without sizes the optimizee counts as nothing: the static pre-flight lets the run through.
    expect(() => preflightExperiment(unsized, registry, 'x.json', 'train')).not.toThrow();
    expect(estimateRunMemory(unsized, registry, { optimizee: { coordinates: 7, bytes: 148 } }).train).toBe(148 + 4 * 2 * 4 + 7 * (2 * (1e12 + 4)));
  });

  it('refuse an oversized run once built, before its first step and before anything is written', async () => {
    const tensors = tf.memory().numTensors;
    const out = path.join(dir, 'refused');
    let error: unknown;
    await trainExperiment(experiment('unsized', 'huge-tape'), registry, { outDir: out, baseDir: dir, where: 'x.json' }).catch((e) => (error = e));
    expect(error).toBeInstanceOf(ConfigError);
    expect(errorProblems(error)).toEqual([expect.stringMatching(/^x\.json: meta-training unsized \{"dims":5\} with huge-tape \{\} would need at least .* TiB of memory \(unroll 2\) \(sizes measured on the built components\), more than this machine's/)]);
    expect(fs.existsSync(out)).toBe(false);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('a run that fits trains and evaluates as before', async () => {
    const tensors = tf.memory().numTensors;
    const out = path.join(dir, 'fits');
    const result = await trainExperiment(experiment('unsized', 'tiny-meta'), registry, { outDir: out, baseDir: dir, where: 'x.json' });
    expect(result.epochs).toBe(1);
    const evaluation = evaluateExperiment(experiment('unsized', 'tiny-meta'), registry, { checkpoint: out, baseDir: dir, where: 'x.json' });
    expect(evaluation.optimizers.map((o) => o.name)).toEqual(['tiny-meta']);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
