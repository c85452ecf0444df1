import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import { resolveTrainingOptions, type TrainingOptions } from '../config/experiment';
import { isUserError } from '../errors';
import { disposeTree, type NamedTensors, type TensorTree } from '../tensor-tree';
import { TinyFamily, TinyMeta } from './engine.fixture';
import { metaGradient, type MetaGradient, type MetaGradientOptions } from './meta-gradient';
import { MetaTrainer } from './meta-trainer';
import { checkUnrollMemory, estimateUnrollMemory, MEMORY_HEADROOM, peakTensorBytes, unrollPeakBytes, type UnrollMemoryEstimate } from './tape-memory';
import { disposeCarry, startRun, type Carry } from './unroll';

const flat = (t: tf.Tensor) => Array.from(t.dataSync());

function expectClose(actual: number[], expected: number[], rel: number, what: string): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => {
    const e = expected[i]!;
    if (!(Math.abs(v - e) <= rel * Math.max(1e-3, Math.abs(e)))) throw new Error(`${what}[${i}]: ${v} vs ${e} (all: ${actual} vs ${expected})`);
  });
}

/** A TinyFamily task and TinyMeta optimizer, `warm` steps into a run (so every slot is non-zero). */
function setup(dims = 3, warm = 2) {
  const family = new TinyFamily(dims);
  const meta = new TinyMeta();
  const task = family.build(family.sample(1, 'train'));
  const optimizer = meta.optimizer();
  let carry: Carry = startRun(task, optimizer, task.initParams(3), 5);
  if (warm > 0) {
    const r = metaGradient(task, optimizer, carry, meta.variables, { length: warm, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 5, training: true });
    tf.dispose([r.metaLoss, r.losses, ...Object.values(r.grads)]);
    disposeCarry(carry);
    carry = r.next;
  }
  const dispose = () => {
    disposeCarry(carry);
    task.dispose();
    meta.dispose();
  };
  return { meta, task, optimizer, carry, dispose };
}

function disposeResult(r: MetaGradient, keep: Carry): void {
  tf.dispose([r.metaLoss, r.losses, ...Object.values(r.grads)]);
  disposeTree(r.next as unknown as TensorTree, keep as unknown as TensorTree);
}

function expectSameResult(a: MetaGradient, b: MetaGradient, rel: number): void {
  expectClose(flat(b.metaLoss), flat(a.metaLoss), rel, 'metaLoss');
  expectClose(flat(b.losses), flat(a.losses), rel, 'losses');
  expect(Object.keys(b.grads).sort()).toEqual(Object.keys(a.grads).sort());
  for (const k of Object.keys(a.grads)) expectClose(flat(b.grads[k]!), flat(a.grads[k]!), rel, `grads.${k}`);
  for (const k of Object.keys(a.next.state.params)) expectClose(flat(b.next.state.params[k]!), flat(a.next.state.params[k]!), rel, `next.params.${k}`);
  const slots = (c: Carry) => c.state.slots as NamedTensors;
  for (const k of Object.keys(slots(a.next))) expectClose(flat(slots(b.next)[k]!), flat(slots(a.next)[k]!), rel, `next.slots.${k}`);
  expect(b.next.state.step).toBe(a.next.state.step);
}

describe.each(['cpu', 'wasm'] as const)('checkpointed meta-gradients on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it.each([
    ['uniform', false, 7, 1],
    ['uniform', false, 7, 2],
    ['uniform', false, 7, 3],
    ['uniform', false, 6, 5],
    ['last', false, 7, 3],
    ['uniform', true, 7, 2],
    ['last', true, 6, 4],
  ] as const)('equal the plain unroll\'s (lossWeights %s, secondDerivatives %s, %i steps in segments of %i)', (lossWeights, secondDerivatives, length, every) => {
    const s = setup();
    const options: MetaGradientOptions = { length, lossWeights, secondDerivatives, batchSeed: 5, training: true };
    const before = tf.memory().numTensors;
    const plain = metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, options);
    const ck = metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, { ...options, checkpointEvery: every });
    // Not vacuous: both weights get a clearly non-zero meta-gradient.
    for (const k of ['a', 'b']) expect(Math.abs(flat(plain.grads[k]!)[0]!)).toBeGreaterThan(1e-3);
    expectSameResult(plain, ck, 2e-5);
    disposeResult(plain, s.carry);
    disposeResult(ck, s.carry);
    expect(tf.memory().numTensors).toBe(before);
    s.dispose();
  });

  it('second derivatives change the meta-gradient, and checkpointing keeps them', () => {
    const s = setup();
    const base: MetaGradientOptions = { length: 6, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 5, training: true };
    const first = metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, { ...base, checkpointEvery: 2 });
    const second = metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, { ...base, secondDerivatives: true, checkpointEvery: 2 });
    const diff = Math.abs(flat(first.grads.a!)[0]! - flat(second.grads.a!)[0]!);
    expect(diff).toBeGreaterThan(1e-4 * Math.abs(flat(first.grads.a!)[0]!));
    disposeResult(first, s.carry);
    disposeResult(second, s.carry);
    s.dispose();
  });

  it('hold a tape of one segment instead of the whole unroll', () => {
    const s = setup(20);
    const options: MetaGradientOptions = { length: 24, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 5, training: true };
    const plain = peakTensorBytes(() => metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, options));
    const ck = peakTensorBytes(() => metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, { ...options, checkpointEvery: 4 }));
    // About 4/24 of the tape, plus the boundary carries and what every step allocates anyway.
    expect(ck.peakBytes).toBeLessThan(plain.peakBytes * 0.35);
    disposeResult(plain.result, s.carry);
    disposeResult(ck.result, s.carry);
    s.dispose();
  });
});

describe('MetaTrainer with training.checkpointEvery', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  const options = (over: Partial<TrainingOptions> = {}) =>
    resolveTrainingOptions({ epochs: 1, episodesPerEpoch: 2, steps: 8, unroll: 8, validateEvery: 1, validationTasks: 1, ...over });

  async function trainedWeights(over: Partial<TrainingOptions>): Promise<{ weights: number[]; metaLoss: number }> {
    const meta = new TinyMeta();
    const trainer = new MetaTrainer(new TinyFamily(), meta, options(over), 7);
    const report = await trainer.trainEpoch();
    const weights = Object.values(meta.getWeights()).flatMap((t) => {
      const v = flat(t);
      t.dispose();
      return v;
    });
    trainer.dispose();
    meta.dispose();
    return { weights, metaLoss: report.metaLoss };
  }

  it('trains the same weights as the plain unroll', async () => {
    const plain = await trainedWeights({});
    const ck = await trainedWeights({ checkpointEvery: 3 });
    const untouched = new TinyMeta();
    const start = [flat(untouched.variables.a!)[0]!, flat(untouched.variables.b!)[0]!];
    untouched.dispose();
    expect(Math.abs(plain.weights[0]! - start[0]!)).toBeGreaterThan(1e-3); // training moved the weights
    expectClose(ck.weights, plain.weights, 1e-5, 'weights');
    expectClose([ck.metaLoss], [plain.metaLoss], 1e-5, 'metaLoss');
    const off = await trainedWeights({ checkpointEvery: 0 });
    expect(off.weights).toEqual(plain.weights);
  });

  it('is a validated option: an integer ≥ 0 or null, null by default', () => {
    expect(options().checkpointEvery).toBeNull();
    expect(() => resolveTrainingOptions({ checkpointEvery: -1 })).toThrow(/checkpointEvery/);
    expect(() => resolveTrainingOptions({ checkpointEvery: 2.5 })).toThrow(/checkpointEvery/);
  });
});

describe('tape memory', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('peakTensorBytes sees the largest number of bytes alive at once, and leaves the count working', () => {
    const before = tf.memory().numBytes;
    const { result, peakBytes } = peakTensorBytes(() => {
      const a = tf.zeros([1000]);
      const b = tf.zeros([250]); // 1,250 floats alive: the peak
      a.dispose();
      const c = tf.zeros([500]);
      b.dispose();
      c.dispose();
      return 7;
    });
    expect(result).toBe(7);
    expect(peakBytes).toBe(1250 * 4);
    expect(tf.memory().numBytes).toBe(before);
    const t = tf.zeros([10]);
    expect(tf.memory().numBytes).toBe(before + 40);
    t.dispose();
  });

  it('extrapolates the peak of a long taped unroll from one and two steps', () => {
    // dims 20: W (20 × 20, copied while each optimizee gradient is taken) does not swamp the tape.
    const s = setup(20);
    const options: MetaGradientOptions = { length: 1, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 5, training: true };
    const before = tf.memory().numTensors;
    const e = estimateUnrollMemory(s.task, s.optimizer, s.carry, s.meta.variables, options);
    expect(tf.memory().numTensors).toBe(before);
    expect(e.coordinates).toBe(22);
    expect(e.carryBytes).toBe(4 * (3 * 22 + 1)); // params, slots (m) and gradients of 22 coordinates, and the loss
    expect(e.bytesPerStep).toBeGreaterThan(0);
    for (const [length, every] of [[24, null], [24, 4]] as const) {
      const run = peakTensorBytes(() => metaGradient(s.task, s.optimizer, s.carry, s.meta.variables, { ...options, length, checkpointEvery: every }));
      disposeResult(run.result, s.carry);
      const predicted = unrollPeakBytes(e, length, every) - e.baseBytes;
      // Within 15 % of the measured peak (exact for the plain tape up to the per-step constant).
      expect(Math.abs(run.peakBytes - predicted)).toBeLessThan(0.15 * run.peakBytes);
    }
    s.dispose();
  });

  const e: UnrollMemoryEstimate = { baseBytes: 100, bytesPerStep: 1000, fixedBytes: 50, carryBytes: 10, coordinates: 12345 };

  it('unrollPeakBytes counts one taped segment and the other boundaries', () => {
    expect(unrollPeakBytes(e, 20, null)).toBe(100 + 50 + 20 * 1000);
    expect(unrollPeakBytes(e, 20, 5)).toBe(100 + 50 + 5 * 1000 + 3 * 10);
    expect(unrollPeakBytes(e, 20, 30)).toBe(100 + 50 + 20 * 1000);
  });

  it('checkUnrollMemory says what to change when an unroll does not fit', () => {
    const limit = 10000 / MEMORY_HEADROOM; // 10,000 usable bytes: 9 taped steps (9,150 + boundaries) fit, 10 do not
    let error: unknown;
    try {
      checkUnrollMemory(e, 20, null, limit, 'wasm');
    } catch (err) {
      error = err;
    }
    expect(isUserError(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('unroll of 20 steps over 12,345 coordinates');
    expect(message).toContain('set training.checkpointEvery to 9 or less');
    expect(message).toContain('reduce training.unroll to 9 or less');
    expect(message).toContain('run on the cpu backend');
    expect(() => checkUnrollMemory(e, 20, 9, limit)).not.toThrow();
    expect(() => checkUnrollMemory(e, 20, 12, limit)).toThrow(/segments of 12 steps \(training.checkpointEvery\).*checkpointEvery to 9 or less/);
    expect(() => checkUnrollMemory(e, 9, null, limit)).not.toThrow();
  });

  it('MetaTrainer refuses, before training, an unroll that does not fit its memory limit', async () => {
    // A tiny artificial cap: what a taped unroll of about 20 steps of this task needs.
    const s = setup(20, 0);
    const probe: MetaGradientOptions = { length: 1, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 5, training: true };
    const cap = unrollPeakBytes(estimateUnrollMemory(s.task, s.optimizer, s.carry, s.meta.variables, probe), 20, null) / MEMORY_HEADROOM;
    s.dispose();
    const meta = new TinyMeta();
    const train = (over: Partial<TrainingOptions>) =>
      new MetaTrainer(new TinyFamily(20), meta, resolveTrainingOptions({ epochs: 1, episodesPerEpoch: 1, steps: 40, unroll: 40, validationTasks: 1, ...over }), 1);
    const before = tf.memory().numTensors;
    const refused = train({});
    refused.memoryLimit = cap;
    const error = await refused.trainEpoch().then(
      () => null,
      (e: unknown) => e,
    );
    expect(isUserError(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toMatch(/^meta-training would run out of memory: .* unroll of 40 steps over 22 coordinates needs about [\d.]+ KiB of tensors/);
    const fits = (key: string) => Number(new RegExp(`${key} to (\\d+) or less`).exec(message)?.[1]);
    expect(Math.abs(fits('reduce training.unroll') - 20)).toBeLessThanOrEqual(1);
    expect(fits('set training.checkpointEvery')).toBeGreaterThanOrEqual(fits('reduce training.unroll') - 2);
    expect(refused.adam.step).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    refused.dispose();
    // The same run in segments of 10 steps fits, and trains.
    const segmented = train({ checkpointEvery: 10 });
    segmented.memoryLimit = cap;
    await segmented.trainEpoch();
    expect(segmented.adam.step).toBe(1);
    segmented.dispose();
    meta.dispose();
  });
});
