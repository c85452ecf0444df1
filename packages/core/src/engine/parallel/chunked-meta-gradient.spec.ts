import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../backend';
import { resolveTrainingOptions, trainingProblems, type TrainingOptions } from '../../config/experiment';
import { isUserError, UserError } from '../../errors';
import { TinyFamily, TinyMeta } from '../engine.fixture';
import { metaGradient, type MetaGradientOptions } from '../meta-gradient';
import { MetaTrainer } from '../meta-trainer';
import { checkUnrollMemory, chunkMemoryEstimate, MEMORY_HEADROOM, type UnrollMemoryEstimate } from '../tape-memory';
import { disposeCarry, startRun } from '../unroll';
import { CHUNK_WORKER_SCRIPT, ChunkedMetaGradient } from './chunked-meta-gradient';
import { chunkBounds, ERROR_BYTES, readError, writeError } from './protocol';

/*
 * What can be checked without starting a thread; the worker threads themselves are tested end to end with the
 * real LSTM in @l2l/cli (worker-threads.spec.ts), where a built meta-optimizer module exists.
 */

/** TinyMeta is coordinatewise (its update of each coordinate reads that coordinate only); it just does not say so. */
class CoordinatewiseTiny extends TinyMeta {
  readonly coordinatewise = true;
}

const source = { module: '/nowhere/never-loaded.js', export: 'build' };
const training = (over: Partial<TrainingOptions> = {}): TrainingOptions =>
  resolveTrainingOptions({ epochs: 1, episodesPerEpoch: 1, steps: 4, unroll: 2, validationTasks: 1, ...over });
const options: MetaGradientOptions = { length: 2, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 1, training: true };

beforeAll(async () => {
  await useBackend('cpu');
});

describe('chunkBounds', () => {
  it('cuts n coordinates into contiguous chunks whose sizes differ by at most one', () => {
    expect(chunkBounds(10, 2)).toEqual([[0, 5], [5, 10]]);
    expect(chunkBounds(11, 3)).toEqual([[0, 3], [3, 7], [7, 11]]);
    expect(chunkBounds(3, 3)).toEqual([[0, 1], [1, 2], [2, 3]]);
    for (const [n, w] of [[15910, 2], [15910, 3], [7, 4]] as const) {
      const b = chunkBounds(n, w);
      expect(b[0]![0]).toBe(0);
      expect(b[w - 1]![1]).toBe(n);
      b.forEach(([lo, hi], i) => i > 0 && expect(lo).toBe(b[i - 1]![1]));
      const sizes = b.map(([lo, hi]) => hi - lo);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });
});

describe('worker error reports', () => {
  it('round-trip a name, message and stack through shared memory, cut to fit', () => {
    const errors = new Uint8Array(2 * ERROR_BYTES);
    const e = new UserError('plugin "x" is not installed — ünïcode');
    writeError(errors, 1, e);
    expect(readError(errors, 1)).toEqual({ name: 'UserError', message: e.message, stack: e.stack });
    expect(readError(errors, 0)).toEqual({ name: 'Error', message: '(no message)', stack: '' });
    const long = new Error('x'.repeat(3 * ERROR_BYTES));
    writeError(errors, 0, long);
    const back = readError(errors, 0);
    expect(back.name).toBe('Error');
    expect(back.message.length).toBeGreaterThan(ERROR_BYTES - 16);
    expect(readError(errors, 1).message).toBe(e.message); // the neighbour's slot is untouched
    writeError(errors, 0, 'a thrown string');
    expect(readError(errors, 0).message).toBe('a thrown string');
  });
});

describe('ChunkedMetaGradient, before any thread starts', () => {
  it('names its built worker script', () => {
    expect(CHUNK_WORKER_SCRIPT).toMatch(/packages[\\/]core[\\/]dist[\\/]engine[\\/]parallel[\\/]chunk-worker\.js$/);
    expect(fs.existsSync(CHUNK_WORKER_SCRIPT)).toBe(true); // `pnpm test` builds first
  });

  it('refuses a meta-optimizer that does not declare itself coordinatewise', () => {
    const meta = new TinyMeta();
    expect(() => new ChunkedMetaGradient(meta, { workers: 2, source })).toThrow(
      'training.workers (2) needs a coordinatewise meta-optimizer (each coordinate\'s update independent of the others), and "tiny-meta" does not declare itself one (MetaOptimizer.coordinatewise); set training.workers to 0',
    );
    expect(() => new ChunkedMetaGradient(new CoordinatewiseTiny(), { workers: 0, source })).toThrow(/must be a positive integer/);
    meta.dispose();
  });

  it('refuses second derivatives, more workers than coordinates and a carry it did not return, without starting threads', () => {
    const meta = new CoordinatewiseTiny();
    const family = new TinyFamily(3); // 3 + 2 coordinates
    const task = family.build(family.sample(0, 'train'));
    const optimizer = meta.optimizer();
    const carry = startRun(task, optimizer, task.initParams(1), 1);
    const chunked = new ChunkedMetaGradient(meta, { workers: 2, source });
    expect(() => chunked.metaGradient(task, carry, { ...options, secondDerivatives: true })).toThrow(
      'training.workers (2) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0',
    );
    const six = new ChunkedMetaGradient(meta, { workers: 6, source });
    expect(() => six.metaGradient(task, carry, options)).toThrow('training.workers (6) must not exceed the number of coordinates of the optimizee (5)');
    const r = metaGradient(task, optimizer, carry, meta.variables, options);
    expect(() => chunked.metaGradient(task, r.next, options)).toThrow(/continues only the carry it returned last .* got one at step 2/);
    expect(chunked.threads).toBe(0);
    // With a carry at step 0 it would start the workers: here their meta-optimizer module does not exist.
    expect(() => chunked.metaGradient(task, carry, options)).toThrow(/never-loaded\.js is missing: training\.workers loads it in each worker thread/);
    expect(chunked.threads).toBe(0);
    tf.dispose([r.metaLoss, r.losses, ...Object.values(r.grads)]);
    disposeCarry(r.next);
    disposeCarry(carry);
    task.dispose();
    meta.dispose();
  });
});

describe('MetaTrainer with training.workers', () => {
  it('refuses, in plain words naming the fields, what workers cannot do', () => {
    const tiny = new TinyMeta();
    const cw = new CoordinatewiseTiny();
    const family = new TinyFamily(3);
    const make = (meta: TinyMeta, over: Partial<TrainingOptions>, src: typeof source | null = source) => () =>
      new MetaTrainer(family, meta, training(over), 0, {}, src ?? undefined);
    expect(make(cw, { workers: 2, secondDerivatives: true })).toThrow(
      'training.workers (2) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0',
    );
    expect(make(tiny, { workers: 2 })).toThrow(/training\.workers \(2\) needs a coordinatewise meta-optimizer/);
    expect(make(cw, { workers: 2 }, null)).toThrow(/training\.workers \(2\): worker threads need to know how to rebuild the meta-optimizer "tiny-meta"/);
    let error: unknown;
    try {
      make(tiny, { workers: 2 })();
    } catch (e) {
      error = e;
    }
    expect(isUserError(error)).toBe(true);
    // Without workers nothing changes, and with them no thread starts before the first unroll.
    const trainer = make(cw, { workers: 2 })();
    expect(trainer.chunked?.threads).toBe(0);
    trainer.dispose();
    expect(new MetaTrainer(family, tiny, training(), 0).chunked).toBeUndefined();
    tiny.dispose();
    cw.dispose();
  });

  it('trainingProblems: workers with second derivatives, nothing else', () => {
    expect(trainingProblems(training({ workers: 3, secondDerivatives: true }))).toEqual([
      'training.workers (3) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0',
    ]);
    expect(trainingProblems(training({ workers: 0, secondDerivatives: true }))).toEqual([]);
    expect(trainingProblems(training({ workers: 2 }))).toEqual([]);
    expect(training().workers).toBe(0); // the schema's default
    expect(() => training({ workers: -1 })).toThrow(/workers/);
    expect(() => training({ workers: 1.5 })).toThrow(/workers/);
  });
});

describe('memory check with workers', () => {
  // M100's figures (bench/results.md): 38.4 MiB per taped step, 15,910 coordinates.
  const MiB = 2 ** 20;
  const e: UnrollMemoryEstimate = { baseBytes: 60 * MiB, bytesPerStep: 38.4 * MiB, fixedBytes: 41.9 * MiB, carryBytes: 5 * MiB, coordinates: 15910 };
  const limit = 4 * 2 ** 30;

  it('scales the per-coordinate costs to a chunk', () => {
    const half = chunkMemoryEstimate(e, 7955);
    expect(half.bytesPerStep).toBeCloseTo(19.2 * MiB, 0);
    expect(half.fixedBytes).toBeCloseTo(20.95 * MiB, 0);
    expect(half.carryBytes).toBeCloseTo(2.5 * MiB, 0);
    expect(half.baseBytes).toBeCloseTo(2.5 * MiB, 0); // the task's data stay in the main thread
    expect(half.coordinates).toBe(7955);
  });

  it('lets an unroll of 100 through on 2 workers that does not fit in one thread, and says so when it does not', () => {
    let error: unknown;
    try {
      checkUnrollMemory(e, 100, null, limit, 'wasm', 0);
    } catch (err) {
      error = err;
    }
    expect((error as Error).message).toContain('or set training.workers to 2 or more (each worker thread holds the tape of its chunk of the coordinates)');
    expect(() => checkUnrollMemory(e, 100, null, limit, 'wasm')).toThrow(/^(?!.*training\.workers)/);
    expect(() => checkUnrollMemory(chunkMemoryEstimate(e, 7955), 100, null, limit, 'wasm', 2)).not.toThrow();
    expect(() => checkUnrollMemory(chunkMemoryEstimate(e, 7955), 200, null, limit, 'wasm', 2)).toThrow(
      /unroll of 200 steps over 7,955 coordinates in each of the 2 worker threads \(training\.workers\) .* or raise training\.workers/,
    );
    expect(MEMORY_HEADROOM).toBeLessThan(1);
  });
});
