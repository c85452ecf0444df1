import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  ChunkedMetaGradient,
  convexCombination,
  disposeCarry,
  disposeTree,
  metaGradient,
  MetaTrainer,
  readSnapshot,
  disposeSnapshot,
  resolveTrainingOptions,
  startRun,
  useBackend,
  type Carry,
  type MetaGradient,
  type MetaGradientOptions,
  type MetaOptimizer,
  type MetaOptimizerSource,
  type NamedTensors,
  type TaskFamily,
} from '@l2l/core';
import { main } from './main';
import { createWorkspace, type Workspace } from './workspace';

/*
 * training.workers end to end: the real LSTM rebuilt in worker threads from the built packages (dist: `pnpm test`
 * runs `tsc -b` first), against the in-process meta-gradient.
 */

let ws: Workspace;
let source: MetaOptimizerSource;
let dir: string;

beforeAll(async () => {
  await useBackend('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-workers-'));
  ws = createWorkspace({ baseDir: dir });
  source = { ...ws.registry.rebuild!, baseDir: dir };
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 128-free toys: a quadratic family of `batch` × 4 coordinates; with the convex-combination trick 3 more, in a second tensor. */
const family = (batch: number): TaskFamily => ws.registry.create('optimizee', { type: 'quadratic', options: { dims: 4, batch } }, { seed: 1, baseDir: dir });
const lstm = (): MetaOptimizer => ws.registry.create('meta-optimizer', { type: 'lstm', options: { hidden: 4 } }, { seed: 2, baseDir: dir });

/** Largest |a − b| over the named tensors, relative to the largest |a| (at least 1). */
function relDiff(a: NamedTensors, b: NamedTensors): number {
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  let diff = 0;
  let scale = 1;
  for (const [n, t] of Object.entries(a)) {
    const x = t.dataSync();
    const y = b[n]!.dataSync();
    expect(b[n]!.shape).toEqual(t.shape);
    for (let i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      scale = Math.max(scale, Math.abs(x[i]!));
    }
  }
  return diff / scale;
}

function expectSame(ref: MetaGradient, got: MetaGradient): void {
  expect(relDiff(ref.grads, got.grads)).toBeLessThan(1e-5);
  expect(Object.keys(got.grads).sort()).toEqual(['lstm0/kernel', 'lstm1/kernel', 'output/kernel']);
  expect(relDiff({ l: ref.losses }, { l: got.losses })).toBeLessThan(1e-6);
  expect(got.metaLoss.dataSync()[0]).toBeCloseTo(ref.metaLoss.dataSync()[0]!, 4);
  expect(relDiff(ref.next.state.params, got.next.state.params)).toBeLessThan(1e-6);
  expect(relDiff(ref.next.grads, got.next.grads)).toBeLessThan(1e-6);
  expect(got.next.loss.dataSync()[0]).toBeCloseTo(ref.next.loss.dataSync()[0]!, 5);
  expect(got.next.state.step).toBe(ref.next.state.step);
}

function release(r: MetaGradient, keepCarry = false): void {
  tf.dispose([r.metaLoss, r.losses, ...Object.values(r.grads)]);
  if (!keepCarry) disposeCarry(r.next);
}

describe.each([
  [2, 2], // 8 + 3 coordinates over 2 workers
  [3, 3], // 12 + 3 over 3
])('ChunkedMetaGradient with %i workers', (workers, batch) => {
  let meta: MetaOptimizer;
  let fam: TaskFamily;
  let chunked: ChunkedMetaGradient;
  beforeAll(() => {
    meta = lstm();
    fam = family(batch);
    chunked = new ChunkedMetaGradient(meta, { workers, source });
  });
  afterAll(async () => {
    await chunked.dispose();
    expect(chunked.threads).toBe(0);
    meta.dispose();
  });

  const task = () => convexCombination(fam.build(fam.sample(1, 'train')), 9, 3);

  it.each(['uniform', 'last'] as const)('equals the in-process meta-gradient over two unrolls of an episode (lossWeights %s), weights changed between them', (lossWeights) => {
    const t = task();
    const optimizer = meta.optimizer();
    const options: MetaGradientOptions = { length: 3, lossWeights, secondDerivatives: false, batchSeed: 4, training: true };
    const original = meta.getWeights();
    const nudged = tf.tidy(() => Object.fromEntries(Object.entries(original).map(([n, w]) => [n, tf.mul(w, 1.1)])));
    const before = tf.memory().numTensors;

    const refStart = startRun(t, optimizer, t.initParams(5), 4);
    const ref1 = metaGradient(t, optimizer, refStart, meta.variables, options);
    disposeTree(refStart, ref1.next);
    meta.setWeights(nudged);
    const ref2 = metaGradient(t, optimizer, ref1.next, meta.variables, options);
    meta.setWeights(original);
    const start: Carry = startRun(t, optimizer, t.initParams(5), 4);
    const got1 = chunked.metaGradient(t, start, options);
    disposeCarry(start);
    meta.setWeights(nudged);
    const got2 = chunked.metaGradient(t, got1.next, options);
    meta.setWeights(original);

    expect(got1.next.state.slots).toEqual({}); // the optimizer's state is in the workers
    expect(chunked.threads).toBe(workers);
    expectSame(ref1, got1);
    expectSame(ref2, got2);
    release(ref1, true); // its next carry was ref2's start: freed with ref2's
    disposeTree(ref1.next, ref2.next);
    release(ref2);
    release(got1, true);
    disposeTree(got1.next, got2.next);
    release(got2);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...Object.values(original), ...Object.values(nudged)]);
    t.dispose();
    // Each worker holds its chunk's carry and nothing that grows.
    expect(chunked.workerStats().map((s) => s.numTensors)).toEqual(Array(workers).fill(chunked.workerStats()[0]!.numTensors));
  });

  it('checkpoints its segments in the workers: same as the plain in-process meta-gradient', () => {
    const t = task();
    const optimizer = meta.optimizer();
    const options: MetaGradientOptions = { length: 5, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 4, training: true };
    const start = startRun(t, optimizer, t.initParams(6), 4);
    const ref = metaGradient(t, optimizer, start, meta.variables, options);
    const got = chunked.metaGradient(t, start, { ...options, checkpointEvery: 2 });
    disposeTree(start, ref.next);
    expectSame(ref, got);
    release(ref);
    release(got);
    t.dispose();
  });

  it('restarts its workers, with room for it, when a later episode has more coordinates', () => {
    const bigger = family(batch + 2);
    const t = convexCombination(bigger.build(bigger.sample(2, 'train')), 9, 3);
    const optimizer = meta.optimizer();
    const options: MetaGradientOptions = { length: 2, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 4, training: true };
    const start = startRun(t, optimizer, t.initParams(6), 4);
    const ref = metaGradient(t, optimizer, start, meta.variables, options);
    const got = chunked.metaGradient(t, start, options);
    disposeTree(start, ref.next);
    expect(chunked.threads).toBeGreaterThanOrEqual(workers); // the old threads may not have reported their exit yet
    expectSame(ref, got);
    release(ref);
    release(got);
    t.dispose();
  });

  it('continues only its own last carry, or a fresh one', () => {
    const t = task();
    const optimizer = meta.optimizer();
    const options: MetaGradientOptions = { length: 2, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 4, training: true };
    const start = startRun(t, optimizer, t.initParams(6), 4);
    const ref = metaGradient(t, optimizer, start, meta.variables, options); // an in-process carry at step 2
    expect(() => chunked.metaGradient(t, ref.next, options)).toThrow(/continues only the carry it returned last .* got one at step 2/);
    release(ref);
    disposeCarry(start);
    t.dispose();
  });
});

describe('MetaTrainer with training.workers', () => {
  it('trains the same weights as in process (two epochs, tricks on), with no tensor leak in either thread', async () => {
    // The tfjs path's worker threads (the fused kernel's threads are tested with the kernel).
    const training = resolveTrainingOptions({ epochs: 2, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 1, convexCombination: true, randomScale: 1, kernel: 'tfjs' });
    const [metaA, metaB] = [lstm(), lstm()];
    const [famA, famB] = [family(2), family(2)];
    const plain = new MetaTrainer(famA, metaA, training, 11);
    const split = new MetaTrainer(famB, metaB, { ...training, workers: 2 }, 11, {}, source);
    try {
      const a1 = await plain.trainEpoch();
      const b1 = await split.trainEpoch();
      expect(b1.metaLoss).toBeCloseTo(a1.metaLoss, 4);
      expect(relDiff(metaA.getWeights(), metaB.getWeights())).toBeLessThan(1e-5);
      const tensors = tf.memory().numTensors;
      const inWorkers = split.chunked!.workerStats().map((s) => s.numTensors);
      await plain.trainEpoch();
      const b2 = await split.trainEpoch();
      expect(tf.memory().numTensors).toBe(tensors);
      expect(split.chunked!.workerStats().map((s) => s.numTensors)).toEqual(inWorkers);
      expect(b2.validationLoss).toBeDefined();
      const [wa, wb] = [metaA.getWeights(), metaB.getWeights()];
      expect(relDiff(wa, wb)).toBeLessThan(1e-5);
      // The weights moved: the comparison is not between two untrained optimizers.
      const fresh = lstm();
      expect(relDiff(fresh.getWeights(), wa)).toBeGreaterThan(1e-3);
      fresh.dispose();
    } finally {
      plain.dispose();
      split.dispose();
      await split.chunked!.dispose();
      expect(split.chunked!.threads).toBe(0);
      [metaA, metaB].forEach((m) => m.dispose());
    }
  });
});

describe('l2l train with training.workers', () => {
  // The tfjs path's worker threads, which rebuild the registry; the fused kernel's threads share the main thread's.
  const experiment = (workers: number) => ({
    backend: 'cpu',
    seed: 3,
    optimizee: { type: 'quadratic', options: { dims: 3, batch: 2 } },
    metaOptimizer: { type: 'lstm', options: { hidden: 4 } },
    training: { epochs: 1, episodesPerEpoch: 2, steps: 4, unroll: 2, validateEvery: 1, validationTasks: 1, workers, kernel: 'tfjs' },
    evaluation: { baselines: [] },
  });
  const train = async (name: string, body: object, out = name, ...flags: string[]) => {
    fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(body));
    let stderr = '';
    const code = await main(['train', `${name}.json`, '--out', out, ...flags], { cwd: dir, stdout: () => undefined, stderr: (s) => (stderr += s) });
    return { code, stderr };
  };
  const epochs = (workers: number, n: number) => ({ ...experiment(workers), training: { ...experiment(workers).training, epochs: n } });

  it('rebuilds the registry in the workers and trains the weights the main thread alone trains', async () => {
    expect(await train('w0', experiment(0))).toEqual({ code: 0, stderr: '' });
    expect(await train('w2', experiment(2))).toEqual({ code: 0, stderr: '' });
    const [a, b] = [readSnapshot(path.join(dir, 'w0'), 'latest'), readSnapshot(path.join(dir, 'w2'), 'latest')];
    expect(relDiff(a.weights, b.weights)).toBeLessThan(1e-5);
    disposeSnapshot(a);
    disposeSnapshot(b);
  });

  it('resumes a run with workers switched on: the same weights as two epochs without them', async () => {
    expect(await train('straight', epochs(0, 2))).toEqual({ code: 0, stderr: '' });
    expect(await train('first', epochs(0, 1), 'resumed')).toEqual({ code: 0, stderr: '' });
    expect(await train('second', epochs(2, 2), 'resumed', '--resume')).toEqual({ code: 0, stderr: '' });
    const [a, b] = [readSnapshot(path.join(dir, 'straight'), 'latest'), readSnapshot(path.join(dir, 'resumed'), 'latest')];
    expect(b.trainer?.epoch).toBe(2);
    expect(relDiff(a.weights, b.weights)).toBeLessThan(1e-5);
    disposeSnapshot(a);
    disposeSnapshot(b);
  });

  it("loads the config's plugins in the workers, resolved from the config's directory", async () => {
    fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
    fs.symlinkSync(path.resolve(__dirname, '../../../examples/plugin-rosenbrock'), path.join(dir, 'node_modules', 'l2l-plugin-rosenbrock'), 'dir');
    const body = { ...experiment(2), plugins: ['l2l-plugin-rosenbrock'], optimizee: { type: 'rosenbrock', options: { dims: 3 } } };
    expect(await train('plugin', body)).toEqual({ code: 0, stderr: '' });
    expect(fs.readFileSync(path.join(dir, 'plugin', 'log.csv'), 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('refuses workers with second derivatives, and more workers than coordinates, naming the field', async () => {
    const second = await train('second', { ...experiment(2), training: { ...experiment(2).training, secondDerivatives: true } });
    expect(second.code).toBe(1);
    expect(second.stderr.trim()).toBe('second.json: training.workers (2) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0');
    const many = await train('many', experiment(7));
    expect(many.code).toBe(1);
    expect(many.stderr.trim()).toBe('training.workers (7) must not exceed the number of coordinates of the optimizee (6)');
  });
});

describe('a failing worker', () => {
  // A source of the real LSTM whose rebuilt optimizer (in the worker only) throws, or exits, at its second update.
  let failing: string;
  beforeAll(() => {
    failing = path.join(dir, 'failing-source.js');
    const metaOptimizers = path.resolve(__dirname, '../../meta-optimizers/dist/index.js');
    fs.writeFileSync(
      failing,
      `const { LstmMetaOptimizer } = require(${JSON.stringify(metaOptimizers)});
exports.build = (how) => (config) => {
  const meta = new LstmMetaOptimizer(config.options);
  const make = meta.optimizer.bind(meta);
  meta.optimizer = () => {
    const o = make();
    return { name: o.name, init: (p) => o.init(p), update: (s, g, c) => {
      if (s.step === 1 && how === 'exit') process.exit(3);
      if (s.step === 1) throw new Error('kaboom at update ' + (s.step + 1));
      return o.update(s, g, c);
    } };
  };
  return meta;
};
exports.notAFunction = 42;
`,
    );
  });

  async function expectFailure(src: MetaOptimizerSource, pattern: RegExp): Promise<void> {
    const meta = lstm();
    const fam = family(2);
    const t = fam.build(fam.sample(1, 'train'));
    const chunked = new ChunkedMetaGradient(meta, { workers: 2, source: src });
    const before = tf.memory().numTensors;
    const start = startRun(t, meta.optimizer(), t.initParams(5), 4);
    try {
      expect(() => chunked.metaGradient(t, start, { length: 3, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 4, training: true })).toThrow(pattern);
      disposeCarry(start);
      expect(tf.memory().numTensors).toBe(before);
      // The workers are terminated: their 'exit' events arrive.
      for (let i = 0; i < 100 && chunked.threads > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(chunked.threads).toBe(0);
    } finally {
      await chunked.dispose();
      t.dispose();
      meta.dispose();
    }
  }

  it('throws its error in the main thread and is terminated', () =>
    expectFailure({ module: failing, export: 'build', args: 'throw' }, /^training\.workers: worker [12] of 2 \(coordinates (0\.\.3|4\.\.7)\) failed while computing step 2 of the unroll: kaboom at update 2$/));

  it('that exits is reported with its exit code', () =>
    expectFailure({ module: failing, export: 'build', args: 'exit' }, /worker [12] of 2 \(coordinates (0\.\.3|4\.\.7)\) failed while computing step 2 of the unroll: the worker thread exited \(code 3\)/));

  it('that cannot load the meta-optimizer fails while starting', async () => {
    await expectFailure({ module: failing, export: 'notAFunction' }, /worker [12] of 2 failed while starting: .*failing-source\.js exports no function "notAFunction" \(exports: build, notAFunction\)/);
    await expectFailure({ module: path.join(dir, 'nowhere.js'), export: 'build' }, /nowhere\.js is missing: training\.workers loads it in each worker thread/);
  });
});
