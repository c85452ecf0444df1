import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import { parseExperiment, resolveExperiment } from '../config/experiment';
import type { Optimizer } from '../contracts/optimizer';
import { TinyFamily, TinyMeta } from '../engine/engine.fixture';
import { readSnapshot, disposeSnapshot } from '../engine/checkpoint';
import { userErrorMessage } from '../testing/user-error';
import { defineComponent } from '../registry/component';
import { ComponentRegistry } from '../registry/registry';
import type { NamedTensors } from '../tensor-tree';
import { coreComponents } from './core-components';
import { trainExperiment } from './train';

/** Heavy-ball momentum, v ← βv + g, θ ← θ − lr·v: an outer optimizer with state of its own to checkpoint. */
function momentum(learningRate: number, beta: number): Optimizer {
  return {
    name: `momentum(lr=${learningRate})`,
    init: (params) => ({ params: { ...params }, slots: Object.fromEntries(Object.entries(params).map(([k, p]) => [k, { velocity: tf.zerosLike(p) }])), step: 0 }),
    update: (s, g) => {
      const slots = s.slots as Record<string, { velocity: tf.Tensor }>;
      const params: NamedTensors = {};
      const next: Record<string, { velocity: tf.Tensor }> = {};
      for (const [k, p] of Object.entries(s.params)) {
        const v = tf.add(tf.mul(slots[k]!.velocity, beta), g[k]!);
        next[k] = { velocity: v };
        params[k] = tf.sub(p, tf.mul(v, learningRate));
      }
      return { params, slots: next, step: s.step + 1 };
    },
  };
}

const registry = new ComponentRegistry([
  coreComponents,
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
      defineComponent<Record<string, never>>()({
        kind: 'meta-optimizer',
        type: 'tiny-meta',
        description: 'Two-weight learned optimizer.',
        schema: { type: 'object', additionalProperties: false, properties: {} },
        create: () => new TinyMeta(),
      }),
      defineComponent<{ learningRate: number; beta: number }>()({
        kind: 'optimizer',
        type: 'momentum',
        description: 'Heavy-ball momentum.',
        schema: {
          type: 'object',
          additionalProperties: false,
          properties: {
            learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Step size.' },
            beta: { type: 'number', minimum: 0, default: 0.9, description: 'Momentum.' },
          },
        },
        create: (o) => momentum(o.learningRate, o.beta),
      }),
    ],
  },
]);

const experiment = (epochs: number, training: object) =>
  resolveExperiment(
    parseExperiment(
      {
        seed: 9,
        optimizee: { type: 'tiny' },
        metaOptimizer: { type: 'tiny-meta' },
        training: { epochs, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 2, learningRate: 0.05, ...training },
        evaluation: { steps: 6, tasks: 2, baselines: [] },
      },
      'estimators.json',
    ),
    registry,
    'estimators.json',
  );

let dir: string;
beforeAll(async () => {
  await useBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-estimators-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const weightsOf = (out: string) => {
  const s = readSnapshot(out, 'latest');
  const w = Object.fromEntries(Object.entries(s.weights).map(([k, t]) => [k, Array.from(t.dataSync())]));
  const outer = Object.fromEntries(Object.entries(s.adam ?? {}).map(([k, t]) => [k, Array.from(t.dataSync())]));
  disposeSnapshot(s);
  return { w, outer };
};

describe.each([
  ['tbptt', { type: 'tbptt' }],
  ['es', { type: 'es', options: { sigma: 0.05, samples: 2 } }],
  ['pes', { type: 'pes', options: { sigma: 0.05, samples: 2 } }],
])('training.estimator %s with momentum as the outer optimizer and 2 tasks per step', (name, estimator) => {
  const training = { estimator, tasksPerStep: 2, outerOptimizer: { type: 'momentum', options: { learningRate: 0.02 } } };

  it('the same seed gives the same weights; --resume continues exactly', async () => {
    const before = tf.memory().numTensors;
    const a = path.join(dir, `${name}-a`);
    const b = path.join(dir, `${name}-b`);
    const c = path.join(dir, `${name}-c`);
    await trainExperiment(experiment(2, training), registry, { outDir: a, baseDir: dir });
    await trainExperiment(experiment(2, training), registry, { outDir: b, baseDir: dir });
    // One epoch, then resumed for the second.
    await trainExperiment(experiment(1, training), registry, { outDir: c, baseDir: dir });
    const r = await trainExperiment(experiment(2, training), registry, { outDir: c, baseDir: dir, resume: true });
    expect(r.epochs).toBe(2);
    const [wa, wb, wc] = [weightsOf(a), weightsOf(b), weightsOf(c)];
    expect(wb).toEqual(wa);
    expect(wc).toEqual(wa);
    // The outer optimizer's state is checkpointed under <weight>/<slot> names, and φ moved.
    expect(Object.keys(wa.outer).sort()).toEqual(['a/velocity', 'b/velocity']);
    expect(wa.w.a![0]).not.toBeCloseTo(Math.log(0.1), 4);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('training.estimator and training.outerOptimizer in the experiment file', () => {
  it('unknown types and bad options are user errors naming the field', () => {
    const attempt = (training: object) => userErrorMessage(() => experiment(1, training));
    expect(attempt({ estimator: { type: 'reinforce' } })).toMatch(/training\.estimator: unknown estimator type "reinforce" \(known: es, pes, tbptt\)/);
    expect(attempt({ estimator: { type: 'es', options: { sigma: 0 } } })).toMatch(/training\.estimator \(estimator "es"\).*sigma/);
    expect(attempt({ outerOptimizer: { type: 'lbfgs' } })).toMatch(/training\.outerOptimizer: unknown optimizer type "lbfgs"/);
  });

  it('resuming with another estimator is refused', async () => {
    const out = path.join(dir, 'switch');
    await trainExperiment(experiment(1, {}), registry, { outDir: out, baseDir: dir });
    await expect(trainExperiment(experiment(2, { estimator: { type: 'pes' } }), registry, { outDir: out, baseDir: dir, resume: true })).rejects.toThrow(/differs from the checkpoint's experiment in training\.estimator/);
  });
});

describe('training.learningRateSchedule in the experiment file', () => {
  const schedule = { type: 'cosine', options: { warmupSteps: 2, final: 0.1 } };

  it('trains with the schedule, logs its factor per epoch and resumes it exactly after a crash', async () => {
    const before = tf.memory().numTensors;
    const a = path.join(dir, 'schedule-a');
    const c = path.join(dir, 'schedule-c');
    const plain = path.join(dir, 'schedule-plain');
    let started: { schedule?: string } = {};
    await trainExperiment(experiment(3, { learningRateSchedule: schedule }), registry, { outDir: a, baseDir: dir, events: { onStart: (i) => (started = i) } });
    expect(started.schedule).toBe('cosine(warm-up 2, to 0.1× at the end of the run) over 12 outer steps');
    // Killed in epoch 2 (before its snapshot), then resumed from epoch 1's with the same config.
    const crash = () => {
      throw new Error('killed');
    };
    await expect(trainExperiment(experiment(3, { learningRateSchedule: schedule }), registry, { outDir: c, baseDir: dir, events: { onEpoch: (r) => r.epoch === 2 && crash() } })).rejects.toThrow('killed');
    await trainExperiment(experiment(3, { learningRateSchedule: schedule }), registry, { outDir: c, baseDir: dir, resume: true });
    await trainExperiment(experiment(3, {}), registry, { outDir: plain, baseDir: dir });
    expect(weightsOf(c)).toEqual(weightsOf(a));
    expect(weightsOf(plain).w).not.toEqual(weightsOf(a).w);
    // 3 epochs × 2 episodes × 2 truncations = 12 outer steps, 10 of them after the warm-up: epochs end at steps 3, 7, 11.
    const log = fs.readFileSync(path.join(a, 'log.csv'), 'utf8').trim().split('\n');
    expect(log[0]).toBe('epoch,meta_loss,final_loss,validation_loss,best,skipped,seconds,learning_rate_factor');
    const factors = log.slice(1).map((l) => Number(l.split(',').at(-1)));
    const cosine = (p: number) => 0.1 + 0.45 * (1 + Math.cos(Math.PI * p));
    expect(factors[0]).toBeCloseTo(cosine(0.1), 12);
    expect(factors[1]).toBeCloseTo(0.55, 12);
    expect(factors[2]).toBeCloseTo(cosine(0.9), 12);
    const resumed = fs.readFileSync(path.join(c, 'log.csv'), 'utf8').trim().split('\n').slice(1);
    expect(resumed.map((l) => Number(l.split(',').at(-1)))).toEqual(factors);
    expect(fs.readFileSync(path.join(plain, 'log.csv'), 'utf8')).not.toMatch(/learning_rate_factor/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('bad schedules are user errors naming the file and the field', () => {
    const attempt = (s: unknown) => userErrorMessage(() => experiment(1, { learningRateSchedule: s }));
    expect(attempt({ type: 'onecycle' })).toMatch(/estimators\.json: training\.learningRateSchedule: unknown schedule type "onecycle" \(known: constant, cosine, exponential, linear, steps\)/);
    expect(attempt({ type: 'cosine', options: { final: 3 } })).toMatch(/estimators\.json: training\.learningRateSchedule \(schedule "cosine"\).*final/);
    expect(attempt({ type: 'steps', options: { boundaries: [0] } })).toMatch(/training\.learningRateSchedule \(schedule "steps"\).*boundaries/);
  });
});
