/*
 * Per-group learned optimizers with the real LSTM: through the registry (nested options), on the tfjs path and
 * on the per-group fused kernel, in meta-training with --resume, checkpoints and evaluation.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  choosePath,
  ComponentRegistry,
  defineComponent,
  deriveSeed,
  disposeCarry,
  disposeSnapshot,
  disposeTree,
  estimateRunMemory,
  evaluateExperiment,
  FusedEpisode,
  loadSnapshotWeights,
  metaGradient,
  MetaTrainer,
  parseExperiment,
  readSnapshot,
  resolveExperiment,
  resolveTrainingOptions,
  Rng,
  runOptimizer,
  startRun,
  trainExperiment,
  unestimatedComponents,
  useBackend,
  VariableOptimizer,
  type MetaOptimizer,
  type NamedTensors,
  type Task,
  type TaskConfig,
  type TaskFamily,
} from '@l2l/core';
import { adamComponent } from '@l2l/baselines';
import { checkForwardPaths, userErrorMessage } from '@l2l/core/testing';
import { expectAllClose } from '../common/spec-helpers';
import { lstmComponent } from '../lstm';
import { perGroupComponent } from './component';

/** f(θ) = Σ κ (θ − t)² over a "kernel" [2, 2, 1, 3] (group conv) and a "bias" [5] (group fc); κ, t from the task seed. */
class GroupedQuadratic implements TaskFamily {
  readonly type = 'grouped-quadratic';
  sample(seed: number, split: 'train' | 'validation' | 'test'): TaskConfig {
    return { family: this.type, split, seed: deriveSeed(seed, split) };
  }
  build(config: TaskConfig): Task {
    const shapes: Record<string, number[]> = { kernel: [2, 2, 1, 3], bias: [5] };
    const rng = new Rng(config.seed);
    const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const kappa = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(rng.uniforms(size(s), 0.2, 2), s)]));
    const target = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(rng.normals(size(s)), s)]));
    return {
      config,
      initParams: (seed) => {
        const r = new Rng(seed);
        return Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, tf.tensor(r.normals(size(s)), s)]));
      },
      batch: () => ({}),
      loss: (p) => tf.tidy(() => tf.addN(Object.keys(shapes).map((k) => tf.sum(tf.mul(kappa[k]!, tf.square(tf.sub(p[k]!, target[k]!)))))) as tf.Scalar),
      parameterGroups: () => ({ kernel: 'conv', bias: 'fc' }),
      dispose: () => tf.dispose([...Object.values(kappa), ...Object.values(target)]),
    };
  }
}

const groupedQuadratic = defineComponent<Record<string, never>>()({
  kind: 'optimizee',
  type: 'grouped-quadratic',
  description: 'A quadratic over a conv-like kernel and a bias, in groups conv and fc (tests only)',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create: () => new GroupedQuadratic(),
});

const registry = () => new ComponentRegistry([
  { source: 'test', components: [lstmComponent, perGroupComponent, groupedQuadratic] },
  { source: '@l2l/baselines', components: [adamComponent] },
]);
const LSTM = { type: 'lstm', options: { hidden: 6 } };
const PER_GROUP = { type: 'per-group', options: { groups: { conv: LSTM, fc: LSTM } } };
const family = new GroupedQuadratic();
const flat = (t: tf.Tensor) => Array.from(t.dataSync());

/** A per-group LSTM pair whose two groups both hold the shared LSTM's weights. */
function copiesOf(shared: MetaOptimizer, reg: ComponentRegistry): MetaOptimizer {
  const meta = reg.create('meta-optimizer', PER_GROUP, { seed: 9, baseDir: '.' });
  const w = shared.getWeights();
  const both: NamedTensors = {};
  for (const [k, t] of Object.entries(w)) both[`conv/${k}`] = both[`fc/${k}`] = t;
  meta.setWeights(both);
  disposeTree(w);
  return meta;
}

describe.each(['wasm', 'cpu'] as const)('per-group LSTMs on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('built from nested configs: seeds differ per group; with the shared LSTM\'s weights in both groups, every path runs as the shared LSTM', () => {
    const reg = registry();
    const shared = reg.create('meta-optimizer', LSTM, { seed: 3, baseDir: '.' });
    const fresh = reg.create('meta-optimizer', PER_GROUP, { seed: 3, baseDir: '.' });
    expect(Object.keys(fresh.variables).sort()).toEqual(Object.keys(shared.variables).flatMap((k) => [`conv/${k}`, `fc/${k}`]).sort());
    expect(flat(fresh.variables['conv/lstm0/kernel']!)).not.toEqual(flat(fresh.variables['fc/lstm0/kernel']!));
    const meta = copiesOf(shared, reg);
    const before = tf.memory().numTensors;
    const task = family.build(family.sample(1, 'test'));
    const run = (m: MetaOptimizer, kernel: 'auto' | 'tfjs') => Array.from(runOptimizer(task, m.optimizer(), { steps: 12, initSeed: 4, batchSeed: 0, kernel }).losses);
    expect(meta.optimizer().fused?.description).toMatch(/^per group \(conv, fc\): wasm lstm-stack/);
    const reference = run(shared, 'tfjs');
    expect(reference[12]!).toBeLessThan(reference[0]!);
    expectAllClose(run(meta, 'tfjs'), reference, 1e-5 * reference[0]!);
    expectAllClose(run(meta, 'auto'), run(shared, 'auto'), 1e-6 * reference[0]!);
    expectAllClose(run(meta, 'auto'), reference, 1e-4 * reference[0]!);
    task.dispose();
    expect(tf.memory().numTensors).toBe(before);
    for (const m of [shared, fresh, meta]) m.dispose();
  });

  it('first-order meta-gradients: the fused per-group kernel gives the tape\'s, and the groups\' add up to the shared LSTM\'s', () => {
    const reg = registry();
    const shared = reg.create('meta-optimizer', LSTM, { seed: 5, baseDir: '.' });
    const meta = copiesOf(shared, reg);
    const task = family.build(family.sample(2, 'train'));
    const before = tf.memory().numTensors;
    const options = { length: 6, lossWeights: 'uniform' as const, secondDerivatives: false, batchSeed: 0, training: true };
    const tape = (m: MetaOptimizer) => {
      const carry = startRun(task, m.optimizer(), task.initParams(7), 0);
      const r = metaGradient(task, m.optimizer(), carry, m.variables, options);
      const grads = Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, flat(g)]));
      const loss = r.metaLoss.dataSync()[0]!;
      disposeTree([r.metaLoss, r.losses, Object.values(r.grads)]);
      disposeCarry(r.next);
      disposeCarry(carry);
      return { grads, loss };
    };
    const ours = tape(meta);
    const theirs = tape(shared);
    expect(ours.loss).toBeCloseTo(theirs.loss, 4);
    const episode = new FusedEpisode(task, meta.optimizer().fused!, task.initParams(7), 0);
    const fused = episode.unroll(6, 'uniform');
    episode.dispose();
    expect(Object.keys(fused.grads).sort()).toEqual(Object.keys(ours.grads).sort());
    for (const name of Object.keys(shared.variables)) {
      const conv = ours.grads[`conv/${name}`]!;
      const fc = ours.grads[`fc/${name}`]!;
      const scale = Math.max(...theirs.grads[name]!.map(Math.abs));
      expect(Math.max(...conv.map(Math.abs))).toBeGreaterThan(1e-6); // each group's LSTM gets its own signal
      expectAllClose(conv.map((g, i) => g + fc[i]!), theirs.grads[name]!, 1e-3 * scale);
      for (const g of ['conv', 'fc']) expectAllClose(Array.from(fused.grads[`${g}/${name}`]!), ours.grads[`${g}/${name}`]!, 1e-3 * scale);
    }
    expect(tf.memory().numTensors).toBe(before);
    task.dispose();
    shared.dispose();
    meta.dispose();
  });

  it('VariableOptimizer drives a model of your own per group (conv-fc by rank), on the kernel and on tfjs alike', () => {
    const reg = registry();
    const meta = reg.create('meta-optimizer', PER_GROUP, { seed: 1, baseDir: '.' });
    const task = family.build(family.sample(3, 'test'));
    const init = task.initParams(0);
    const losses = (kernel: 'auto' | 'tfjs') => {
      const vars = Object.fromEntries(Object.entries(init).map(([k, t]) => [k, tf.variable(t.clone())]));
      const opt = new VariableOptimizer(meta.optimizer(), vars, { kernel, groups: 'conv-fc' });
      const out = Array.from({ length: 5 }, () => opt.minimize(() => task.loss(vars, {})));
      opt.dispose();
      tf.dispose(Object.values(vars));
      return out;
    };
    const direct = Array.from(runOptimizer(task, meta.optimizer(), { steps: 5, initSeed: 0, batchSeed: 0, kernel: 'tfjs' }).losses).slice(0, 5);
    expectAllClose(losses('tfjs'), direct, 1e-5 * direct[0]!);
    expectAllClose(losses('auto'), direct, 1e-4 * direct[0]!);
    const vars = Object.fromEntries(Object.entries(init).map(([k, t]) => [k, tf.variable(t.clone())]));
    expect(() => new VariableOptimizer(meta.optimizer(), vars, { kernel: 'tfjs' })).toThrow(/group "all", which has no optimizer here/);
    tf.dispose([...Object.values(vars), ...Object.values(init)]);
    task.dispose();
    meta.dispose();
  });
});

/** A resolved experiment on the grouped quadratic, small enough to train in seconds. */
const experiment = (training: Record<string, unknown> = {}, metaOptimizer: unknown = PER_GROUP) =>
  resolveExperiment(
    parseExperiment(
      {
        seed: 1,
        optimizee: { type: 'grouped-quadratic' },
        metaOptimizer,
        training: { epochs: 2, episodesPerEpoch: 2, steps: 8, unroll: 4, validateEvery: 1, validationTasks: 2, learningRate: 0.01, ...training },
        evaluation: { steps: 8, tasks: 3, baselines: [] },
      },
      'x.json',
    ),
    registry(),
    'x.json',
  );

/**
 * Trains `metaOptimizer` as `experiment` does, once on the tfjs tape and once on the kernel's threads
 * (training.workers 2): both end at the weights of the `latest/` snapshot in `reference`, to float rounding.
 */
async function expectTapeAndThreadsAgree(reg: ComponentRegistry, reference: string, metaOptimizer: unknown, dir: string, prefix: string): Promise<void> {
  const d = readSnapshot(reference, 'latest');
  try {
    for (const [name, training] of [['tape', { kernel: 'tfjs' }], ['threads', { workers: 2 }]] as const) {
      const out = path.join(dir, `${prefix}-${name}`);
      await trainExperiment(experiment(training, metaOptimizer), reg, { outDir: out, baseDir: dir });
      const c = readSnapshot(out, 'latest');
      expect(Object.keys(c.weights).sort()).toEqual(Object.keys(d.weights).sort());
      for (const k of Object.keys(d.weights)) expectAllClose(flat(c.weights[k]!), flat(d.weights[k]!), 1e-3);
      disposeSnapshot(c);
    }
  } finally {
    disposeSnapshot(d);
  }
}

describe('per-group experiments end to end (cpu)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-per-group-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('trains (fused and tape paths), checkpoints each group\'s weights, resumes exactly, and evaluates from the checkpoint', async () => {
    const reg = registry();
    const straight = path.join(dir, 'straight');
    const e = experiment();
    expect((e.metaOptimizer!.options!.groups as Record<string, { options: Record<string, unknown> }>).fc!.options.layers).toBe(2); // nested defaults applied
    const before = tf.memory().numTensors;
    await trainExperiment(e, reg, { outDir: straight, baseDir: dir, where: 'x.json' });
    const split = path.join(dir, 'split');
    await trainExperiment(experiment({ epochs: 1 }), reg, { outDir: split, baseDir: dir });
    await trainExperiment(e, reg, { outDir: split, baseDir: dir, resume: true });
    const a = readSnapshot(straight, 'latest');
    const b = readSnapshot(split, 'latest');
    expect(a.metaOptimizer).toEqual(e.metaOptimizer);
    expect(Object.keys(a.weights).sort()).toEqual(Object.keys(b.weights).sort());
    expect(Object.keys(a.weights).some((k) => k.startsWith('conv/')) && Object.keys(a.weights).some((k) => k.startsWith('fc/'))).toBe(true);
    for (const k of Object.keys(a.weights)) expect(flat(b.weights[k]!)).toEqual(flat(a.weights[k]!));
    // The round trip: the checkpoint rebuilds the same meta-optimizer, weights and all.
    const rebuilt = reg.create('meta-optimizer', a.metaOptimizer, { seed: 0, baseDir: dir });
    loadSnapshotWeights(rebuilt, a);
    const w = rebuilt.getWeights();
    for (const k of Object.keys(a.weights)) expect(flat(w[k]!)).toEqual(flat(a.weights[k]!));
    expect(rebuilt.config()).toEqual(a.metaOptimizer);
    disposeTree(w);
    rebuilt.dispose();
    disposeSnapshot(a);
    disposeSnapshot(b);
    const results = evaluateExperiment(e, reg, { checkpoint: straight, baseDir: dir });
    expect(results.optimizers[0]!.name).toBe('per-group(conv: lstm, fc: lstm)');
    expect(results.optimizers[0]!.final.mean).toBeLessThan(results.optimizers[0]!.curve.mean[0]!);
    // The tape path trains it too, and so do the kernels' threads (training.workers, per group), to the same
    // weights up to float rounding.
    await expectTapeAndThreadsAgree(reg, straight, PER_GROUP, dir, 'lstms');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('one-line user errors: a group the optimizee lacks, nested options, group names, workers on the tape', async () => {
    const message = (f: () => unknown) => userErrorMessage(async () => f());
    const reg = registry();
    const dense = { type: 'per-group', options: { groups: { conv: LSTM, dense: LSTM } } };
    expect(await message(() => trainExperiment(experiment({}, dense), reg, { outDir: path.join(dir, 'dense'), baseDir: dir, where: 'x.json' }))).toBe(
      'x.json: metaOptimizer.options.groups: no parameter group "dense" (optimizee "grouped-quadratic" has parameter groups "conv", "fc")',
    );
    expect(await message(() => experiment({}, { type: 'per-group', options: { groups: { conv: LSTM, fc: { type: 'lstm', options: { hiden: 3 } } } } }))).toMatch(
      /^x\.json: metaOptimizer\.options\.groups\.fc \(meta-optimizer "lstm"\).*hiden/,
    );
    expect(await message(() => experiment({}, { type: 'per-group', options: { groups: { conv: LSTM, fc: { type: 'lstn' } } } }))).toMatch(/^x\.json: metaOptimizer\.options\.groups\.fc: unknown meta-optimizer type "lstn"/);
    expect(await message(() => experiment({}, { type: 'per-group', options: { groups: { Conv: LSTM } } }))).toMatch(/^x\.json: metaOptimizer \(meta-optimizer "per-group"\).*groups/);
    const meta = reg.create('meta-optimizer', PER_GROUP, { seed: 0, baseDir: dir });
    const training = resolveTrainingOptions({ steps: 4, unroll: 4, workers: 2, kernel: 'tfjs' });
    expect(await message(() => new MetaTrainer(family, meta, training, 0, {}, { module: 'x', export: 'y' }))).toMatch(/^training\.workers \(2\) on the tfjs tape does not split per-group meta-optimizers/);
    meta.dispose();
  });
});

describe('a baseline for a group (DeepMind\'s simple-multi: an LSTM for conv, Adam for fc), cpu', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-per-group-baseline-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ADAM = { kind: 'optimizer', type: 'adam', options: { learningRate: 0.05 } };
  const MIXED = { type: 'per-group', options: { groups: { conv: LSTM, fc: ADAM } } };
  it('each group follows its own optimizer: conv the LSTM\'s trajectory, fc exactly Adam\'s (the quadratic is separable)', () => {
    const reg = registry();
    const lstm = reg.create('meta-optimizer', LSTM, { seed: 4, baseDir: '.' });
    const adam = reg.create('optimizer', { type: 'adam', options: { learningRate: 0.05 } }, { seed: 0, baseDir: '.' });
    const mixed = reg.create('meta-optimizer', MIXED, { seed: 4, baseDir: '.' });
    expect(Object.keys(mixed.variables).every((k) => k.startsWith('conv/'))).toBe(true);
    const w = lstm.getWeights();
    mixed.setWeights(Object.fromEntries(Object.entries(w).map(([k, t]) => [`conv/${k}`, t])));
    disposeTree(w);
    // Adam's group runs its own tfjs update inside the per-group kernel.
    expect(mixed.optimizer().fused?.description).toMatch(/^per group \(conv, fc\): wasm lstm-stack.*; adam\(lr=0\.05\) on tfjs$/);
    const task = family.build(family.sample(5, 'test'));
    const before = tf.memory().numTensors;
    // The parameters after `steps` steps of an optimizer, from the same start.
    const after = (opt: ReturnType<MetaOptimizer['optimizer']>, steps: number) => {
      const init = task.initParams(1);
      let state = opt.init(init, { kernel: 'conv', bias: 'fc' });
      disposeTree(init);
      for (let i = 0; i < steps; i++) {
        const next = tf.tidy(() => {
          const names = Object.keys(state.params);
          const grads = tf.grads((...xs: tf.Tensor[]) => task.loss(Object.fromEntries(names.map((n, j) => [n, xs[j]!])), {}))(names.map((n) => state.params[n]!));
          return opt.update(state, Object.fromEntries(names.map((n, j) => [n, grads[j]!])), { step: i, training: false }) as unknown as tf.TensorContainer;
        }) as unknown as typeof state;
        disposeTree([state.params, state.slots]);
        state = next;
      }
      const out = { kernel: flat(state.params.kernel!), bias: flat(state.params.bias!) };
      disposeTree([state.params, state.slots]);
      return out;
    };
    const ours = after(mixed.optimizer(), 6);
    expectAllClose(ours.bias, after(adam, 6).bias, 1e-6);
    expectAllClose(ours.kernel, after(lstm.optimizer(), 6).kernel, 1e-6);
    expect(ours.bias).not.toEqual(after(lstm.optimizer(), 6).bias);
    // The kernel path (Adam on tfjs inside it) runs the same losses as the tfjs path.
    const losses = (kernel: 'auto' | 'tfjs') => Array.from(runOptimizer(task, mixed.optimizer(), { steps: 8, initSeed: 1, batchSeed: 0, kernel }).losses);
    const reference = losses('tfjs');
    expect(reference[8]!).toBeLessThan(reference[0]!);
    expectAllClose(losses('auto'), reference, 1e-5 * reference[0]!);
    expect(tf.memory().numTensors).toBe(before);
    task.dispose();
    for (const m of [lstm, mixed]) m.dispose();
  });

  it('first-order meta-gradients on the kernel path equal the tape\'s, in one thread and two; Adam\'s group adds none', () => {
    const reg = registry();
    const mixed = reg.create('meta-optimizer', MIXED, { seed: 6, baseDir: '.' });
    // Meta-training takes the kernel path for it, threads included.
    expect(choosePath(mixed, { kernel: 'auto', secondDerivatives: false, workers: 2 }).description).toMatch(/^meta-gradients: fused kernel, per group \(conv, fc\).*, 2 threads$/);
    const task = family.build(family.sample(2, 'train'));
    const before = tf.memory().numTensors;
    const carry = startRun(task, mixed.optimizer(), task.initParams(7), 0);
    const r = metaGradient(task, mixed.optimizer(), carry, mixed.variables, { length: 6, lossWeights: 'uniform', secondDerivatives: false, batchSeed: 0, training: true });
    const tape = Object.fromEntries(Object.entries(r.grads).map(([k, g]) => [k, flat(g)]));
    const tapeLoss = r.metaLoss.dataSync()[0]!;
    disposeTree([r.metaLoss, r.losses, Object.values(r.grads)]);
    disposeCarry(r.next);
    disposeCarry(carry);
    for (const threads of [1, 2]) {
      const episode = new FusedEpisode(task, mixed.optimizer().fused!, task.initParams(7), 0, threads);
      const fused = episode.unroll(6, 'uniform');
      episode.dispose();
      expect(fused.metaLoss).toBeCloseTo(tapeLoss, 4);
      expect(Object.keys(fused.grads).sort()).toEqual(Object.keys(tape).sort());
      for (const [name, g] of Object.entries(tape)) {
        const scale = Math.max(...g.map(Math.abs));
        expect(scale).toBeGreaterThan(1e-6);
        expectAllClose(Array.from(fused.grads[name]!), g, 1e-3 * scale);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    task.dispose();
    mixed.dispose();
  });

  it('ES/PES forward passes on the per-group kernel (the LSTM\'s state and Adam\'s slots in its snapshots) give the tfjs path\'s objectives', () => {
    const mixed = registry().create('meta-optimizer', MIXED, { seed: 6, baseDir: '.' });
    const task = family.build(family.sample(2, 'train'));
    const before = tf.memory().numTensors;
    for (const threads of [1, 2]) expect(checkForwardPaths(mixed, task, { length: 4, truncations: 3, threads }).value).toBeLessThanOrEqual(1e-5);
    expect(tf.memory().numTensors).toBe(before);
    task.dispose();
    mixed.dispose();
  });

  it('meta-trains the LSTM only, and the checkpoint rebuilds the baseline group with its options', async () => {
    const reg = registry();
    const e = experiment({}, MIXED);
    expect((e.metaOptimizer!.options!.groups as Record<string, Record<string, unknown>>).fc).toEqual({ kind: 'optimizer', type: 'adam', options: expect.objectContaining({ learningRate: 0.05 }) });
    const before = tf.memory().numTensors;
    const out = path.join(dir, 'mixed');
    await trainExperiment(e, reg, { outDir: out, baseDir: dir, where: 'x.json' });
    const snap = readSnapshot(out, 'latest');
    expect(snap.metaOptimizer).toEqual(e.metaOptimizer);
    expect(Object.keys(snap.weights).length).toBeGreaterThan(0);
    expect(Object.keys(snap.weights).every((k) => k.startsWith('conv/'))).toBe(true);
    const initial = reg.create('meta-optimizer', e.metaOptimizer!, { seed: 0, baseDir: dir });
    const rebuilt = reg.create('meta-optimizer', snap.metaOptimizer, { seed: 0, baseDir: dir });
    expect(rebuilt.config()).toEqual(snap.metaOptimizer);
    loadSnapshotWeights(rebuilt, snap);
    const w = rebuilt.getWeights();
    for (const k of Object.keys(snap.weights)) expect(flat(w[k]!)).toEqual(flat(snap.weights[k]!));
    // Meta-training moved the LSTM's weights.
    expect(Object.keys(snap.weights).some((k) => flat(snap.weights[k]!).some((v, i) => v !== flat(initial.variables[k]!)[i]))).toBe(true);
    disposeTree(w);
    for (const m of [initial, rebuilt]) m.dispose();
    disposeSnapshot(snap);
    const results = evaluateExperiment(e, reg, { checkpoint: out, baseDir: dir });
    expect(results.optimizers[0]!.name).toBe('per-group(conv: lstm, fc: adam(lr=0.05))');
    expect(results.optimizers[0]!.final.mean).toBeLessThan(results.optimizers[0]!.curve.mean[0]!);
    // It trained on the kernel path; the tape and the kernel's threads (training.workers) train it to the same weights.
    await expectTapeAndThreadsAgree(reg, out, MIXED, dir, 'mixed');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the pre-flight sizes per-group from its groups: weights add up to the built ones, a baseline group holds none', () => {
    const reg = registry();
    const measured = { optimizee: { coordinates: 1000 } }; // grouped-quadratic gives no estimate
    const weightsOf = (config: unknown) => {
      const m = reg.create('meta-optimizer', config as { type: string }, { seed: 0, baseDir: dir });
      const n = Object.values(m.variables).reduce((a, v) => a + v.size, 0);
      m.dispose();
      return n;
    };
    const [single, pair, mixed] = [LSTM, PER_GROUP, MIXED].map((m) => experiment({}, m));
    for (const e of [single, pair, mixed]) expect(unestimatedComponents(e, reg, 'train')).toEqual(['optimizee "grouped-quadratic" (test)']);
    // Same options per group, so the same sizes per coordinate: only the weights (and their meta-gradient and Adam moments) differ.
    const [w1, w2] = [weightsOf(single.metaOptimizer), weightsOf(pair.metaOptimizer)];
    expect(w2).toBe(2 * w1);
    expect(estimateRunMemory(pair, reg, measured).train! - estimateRunMemory(single, reg, measured).train!).toBe(4 * 4 * (w2 - w1));
    // The LSTM + Adam pair has the LSTM's weights, the LSTM's fused kernel (Adam runs inside it on tfjs), and no tape per coordinate counted for Adam's group.
    expect(weightsOf(mixed.metaOptimizer)).toBe(w1);
    const tape = resolveExperiment(parseExperiment({ ...JSON.parse(JSON.stringify(single)), training: { ...single.training, kernel: 'tfjs' } }, 'x.json'), reg, 'x.json');
    expect(estimateRunMemory(mixed, reg, measured).train!).toBeLessThan(estimateRunMemory(tape, reg, measured).train!);
    expect(estimateRunMemory(mixed, reg, measured).train!).toBeGreaterThan(estimateRunMemory(single, reg, measured).train! - 1000 * 1e6);
  });

  it('one-line user errors: every group a baseline, an unknown baseline, a baseline\'s bad option', () => {
    const message = userErrorMessage;
    expect(message(() => experiment({}, { type: 'per-group', options: { groups: { conv: ADAM, fc: ADAM } } }))).toMatch(
      /^x\.json: metaOptimizer\.options\.groups: every group is a baseline \(kind "optimizer"\), so there is nothing to meta-train/,
    );
    expect(message(() => experiment({}, { type: 'per-group', options: { groups: { conv: LSTM, fc: { kind: 'optimizer', type: 'adamw' } } } }))).toMatch(
      /^x\.json: metaOptimizer\.options\.groups\.fc: unknown optimizer type "adamw" \(known: adam\)/,
    );
    expect(message(() => experiment({}, { type: 'per-group', options: { groups: { conv: LSTM, fc: { kind: 'optimizer', type: 'adam', options: { learningRat: 1 } } } } }))).toMatch(
      /^x\.json: metaOptimizer\.options\.groups\.fc \(optimizer "adam"\).*learningRat/,
    );
    expect(message(() => experiment({}, { type: 'per-group', options: { groups: { conv: LSTM, fc: { kind: 'baseline', type: 'adam' } } } }))).toMatch(/^x\.json: metaOptimizer \(meta-optimizer "per-group"\).*kind/);
  });
});
