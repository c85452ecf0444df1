import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import type { LearningRateSchedule } from '../contracts/schedule';
import { userErrorMessage } from '../testing/user-error';
import { TinyFamily, TinyMeta, trainingOptions } from './engine.fixture';
import { MetaTrainer } from './meta-trainer';
import { builtinSchedule, cosineSchedule, exponentialSchedule, linearSchedule, stepsSchedule } from './schedules';
import type { TrainingOptions } from './options';
import type { Optimizer } from '../contracts/optimizer';
import type { NamedTensors } from '../tensor-tree';

beforeAll(async () => {
  await useBackend('cpu');
});

describe('built-in learning-rate schedules (values worked out by hand)', () => {
  it('cosine: linear warm-up, then half a cosine to final', () => {
    const s = cosineSchedule({ warmupSteps: 4, decaySteps: 10, final: 0.1 });
    expect(s.factor(0, 100)).toBeCloseTo(0.25, 12);
    expect(s.factor(3, 100)).toBeCloseTo(1, 12);
    expect(s.factor(4, 100)).toBeCloseTo(1, 12); // decay starts: cos 0
    expect(s.factor(9, 100)).toBeCloseTo(0.1 + 0.9 * 0.5, 12); // halfway: cos(π/2) = 0
    expect(s.factor(14, 100)).toBeCloseTo(0.1, 12);
    expect(s.factor(500, 100)).toBeCloseTo(0.1, 12);
    // decaySteps null: the rest of the run, 24 − 4 = 20 steps here.
    const toEnd = cosineSchedule({ warmupSteps: 4 });
    expect(toEnd.factor(14, 24)).toBeCloseTo(0.5, 12);
    expect(toEnd.factor(24, 24)).toBeCloseTo(0, 12);
    expect(toEnd.name).toBe('cosine(warm-up 4, to 0× at the end of the run)');
  });

  it('linear, exponential (continuous and staircase) and steps', () => {
    const lin = linearSchedule({ final: 0.2 });
    expect(lin.factor(0, 10)).toBe(1);
    expect(lin.factor(5, 10)).toBeCloseTo(0.6, 12);
    expect(lin.factor(10, 10)).toBeCloseTo(0.2, 12);
    expect(lin.factor(11, 10)).toBeCloseTo(0.2, 12);
    const exp = exponentialSchedule({ rate: 0.5, every: 2 });
    expect(exp.factor(0, 0)).toBe(1);
    expect(exp.factor(1, 0)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(exp.factor(2, 0)).toBeCloseTo(0.5, 12);
    const stair = exponentialSchedule({ rate: 0.5, every: 2, staircase: true, warmupSteps: 2 });
    expect([0, 1, 2, 3, 4, 5, 6].map((s) => stair.factor(s, 0))).toEqual([0.5, 1, 1, 1, 0.5, 0.5, 0.25]);
    const steps = stepsSchedule({ boundaries: [10, 5], rate: 0.1 });
    expect([0, 4, 5, 9].map((s) => steps.factor(s, 0))).toEqual([1, 1, 0.1, 0.1]);
    expect(steps.factor(10, 0)).toBeCloseTo(0.01, 15);
    expect(steps.name).toBe('steps(×0.1 from steps 5, 10)');
  });

  it('bad options are user errors naming the schedule and the field', () => {
    const message = userErrorMessage;
    expect(message(() => cosineSchedule({ final: 2 }))).toBe('training.learningRateSchedule (schedule "cosine"): final must be a number in [0, 1], got 2');
    expect(message(() => linearSchedule({ decaySteps: 0 }))).toMatch(/decaySteps must be an integer ≥ 1 or null, got 0/);
    expect(message(() => exponentialSchedule({ rate: 1.5, every: 0.5 }))).toMatch(/rate must be a number in \(0, 1\], got 1\.5; every must be an integer ≥ 1, got 0\.5/);
    expect(message(() => stepsSchedule({ boundaries: [0] }))).toMatch(/boundaries must be a list of integers ≥ 1, got \[0\]/);
    expect(message(() => builtinSchedule({ type: 'cosine', options: { warmup: 3 } }))).toMatch(/unknown option "warmup" \(known: warmupSteps, decaySteps, final\)/);
    expect(message(() => builtinSchedule({ type: 'onecycle' }))).toMatch(/unknown schedule type "onecycle" \(built in: constant, cosine, linear, exponential, steps;/);
  });
});

describe('MetaTrainer with a learning-rate schedule', () => {
  const base: Partial<TrainingOptions> = { epochs: 1, episodesPerEpoch: 1, learningRate: 0.05, validateEvery: 100, validationTasks: 1 };
  const weights = (meta: TinyMeta) => ({ a: meta.variables.a!.dataSync()[0], b: meta.variables.b!.dataSync()[0] });
  const train = async (over: Partial<TrainingOptions>, schedule?: LearningRateSchedule, outer?: Optimizer) => {
    const meta = new TinyMeta();
    const trainer = new MetaTrainer(new TinyFamily(3), meta, trainingOptions({ ...base, ...over }), 4, {}, undefined, {
      ...(schedule && { learningRateSchedule: schedule }),
      ...(outer && { outerOptimizer: outer }),
    });
    const report = await trainer.trainEpoch();
    const w = weights(meta);
    trainer.dispose();
    meta.dispose();
    return { w, report };
  };

  it('a factor of 0 from outer step 2 on leaves φ where two steps without a schedule leave it', async () => {
    const before = tf.memory().numTensors;
    const seen: Array<[number, number]> = [];
    const stopAt2: LearningRateSchedule = { name: 'stop at 2', factor: (s, total) => (seen.push([s, total]), s < 2 ? 1 : 0) };
    // Four truncations of 3 steps, the last two with learning rate 0; against an episode of two truncations.
    const scheduled = await train({ steps: 12, unroll: 3 }, stopAt2);
    const short = await train({ steps: 6, unroll: 3 });
    expect(scheduled.w).toEqual(short.w);
    expect(scheduled.w.a).not.toBe(Math.log(0.1));
    // Each truncation's place in the run, of 4; then the epoch's last for its report.
    expect(seen).toEqual([[0, 4], [1, 4], [2, 4], [3, 4], [3, 4]]);
    expect(scheduled.report.learningRateFactor).toBe(0);
    expect(short.report.learningRateFactor).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the default Adam and an outer optimizer scale their learning rate by the factor', async () => {
    const half: LearningRateSchedule = { name: 'half', factor: () => 0.5 };
    expect((await train({}, half)).w).toEqual((await train({ learningRate: 0.025 })).w);
    // A plain SGD outer optimizer that honours StepContext.learningRateScale, as the baselines do.
    const sgd = (lr: number): Optimizer => ({
      name: `sgd(${lr})`,
      init: (params) => ({ params: { ...params }, slots: {}, step: 0 }),
      update: (s, g, ctx) => {
        const params: NamedTensors = {};
        for (const [k, p] of Object.entries(s.params)) params[k] = tf.sub(p, tf.mul(g[k]!, lr * (ctx.learningRateScale ?? 1)));
        return { params, slots: {}, step: s.step + 1 };
      },
    });
    expect((await train({}, half, sgd(0.2))).w).toEqual((await train({}, undefined, sgd(0.1))).w);
  });

  it('a schedule of the experiment file is built from its {type, options}; a factor that is not finite stops training', async () => {
    const stepsRun = await train({ steps: 12, learningRateSchedule: { type: 'steps', options: { boundaries: [2], rate: 0.5 } } });
    expect(stepsRun.report.learningRateFactor).toBe(0.5);
    const broken: LearningRateSchedule = { name: 'broken', factor: () => NaN };
    await expect(train({}, broken)).rejects.toThrow('training.learningRateSchedule "broken": factor NaN at outer step 0 (must be finite and ≥ 0)');
  });
});
