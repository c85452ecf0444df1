import * as tf from '@tensorflow/tfjs';
import { useBackend } from './backend';
import type { MetaOptimizer } from './contracts/meta-optimizer';
import type { Optimizer } from './contracts/optimizer';
import { writeSnapshot } from './engine/checkpoint';
import { PerGroupMetaOptimizer } from './engine/per-group';
import { defineComponent } from './registry/component';
import { ComponentRegistry } from './registry/registry';
import { createTfOptimizer, registerTfOptimizer, TfOptimizer, tfOptimizerFromCheckpoint } from './tf-optimizer';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** Momentum written out (velocity v ← μv + g, θ ← θ − lr·v), to compare with tf.train.momentum. */
const momentum = (lr: () => tf.Tensor | number, mu: number): Optimizer => ({
  name: 'momentum',
  init: (params) => ({ params, slots: Object.fromEntries(Object.entries(params).map(([k, p]) => [k, tf.zerosLike(p)])), step: 0 }),
  update: (s, g) => {
    const slots = s.slots as Record<string, tf.Tensor>;
    const v = Object.fromEntries(Object.keys(s.params).map((k) => [k, tf.add(tf.mul(slots[k]!, mu), g[k]!)]));
    return { params: Object.fromEntries(Object.keys(s.params).map((k) => [k, tf.sub(s.params[k]!, tf.mul(v[k]!, lr()))])), slots: v, step: s.step + 1 };
  },
});

/** A one-weight "learned" optimizer: momentum 0.9 with learning rate exp(φ.logLr). */
const learnedMomentum = defineComponent<Record<string, never>>()({
  kind: 'meta-optimizer',
  type: 'learned-momentum',
  description: 'momentum with a learned log learning rate',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create: (): MetaOptimizer => {
    const logLr = tf.variable(tf.scalar(Math.log(0.01)), true);
    return {
      type: 'learned-momentum',
      config: () => ({ type: 'learned-momentum', options: {} }),
      get variables() {
        return { logLr };
      },
      getWeights: () => ({ logLr: tf.clone(logLr) }),
      setWeights: (w) => {
        if (!w.logLr || w.logLr.rank !== 0) throw new Error('expected a scalar weight "logLr"');
        logLr.assign(w.logLr as tf.Scalar);
      },
      optimizer: () => momentum(() => tf.exp(logLr), 0.9),
      dispose: () => logLr.dispose(),
    };
  },
});
const plainMomentum = defineComponent<{ learningRate: number }>()({
  kind: 'optimizer',
  type: 'plain-momentum',
  description: 'momentum 0.9',
  schema: { type: 'object', additionalProperties: false, properties: { learningRate: { type: 'number', default: 0.01, description: 'step size' } } },
  create: ({ learningRate }) => momentum(() => learningRate, 0.9),
});
/** The per-group meta-optimizer as @l2l/meta-optimizers registers it, over this spec's components. */
const perGroup = defineComponent<{ groups: Record<string, { type: string }> }>()({
  kind: 'meta-optimizer',
  type: 'per-group',
  description: 'one learned optimizer per parameter group',
  schema: { type: 'object', additionalProperties: false, properties: { groups: { type: 'object', description: 'group → component' } } },
  create: ({ groups }, ctx) => new PerGroupMetaOptimizer(Object.fromEntries(Object.entries(groups).map(([g, c]) => [g, ctx.createNested!('meta-optimizer', c, g)]))),
});
const registry = new ComponentRegistry([{ source: 'test', components: [learnedMomentum, plainMomentum, perGroup] }]);

const data = () => {
  const xs = tf.tensor2d([[1, 0], [0, 1], [1, 1], [2, 1], [-1, 2], [0.5, -1]]);
  return { xs, ys: tf.tensor2d([[3], [-1], [2], [5], [-5], [2.5]]) }; // y = 3a − b
};
const makeModel = () =>
  tf.sequential({ layers: [tf.layers.dense({ units: 3, inputShape: [2], activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }), tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] });

async function fitLosses(optimizer: tf.Optimizer, model = makeModel(), epochs = 6) {
  const { xs, ys } = data();
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const history = await model.fit(xs, ys, { epochs, batchSize: 2, shuffle: false, verbose: 0 });
  tf.dispose([xs, ys]);
  return { model, losses: history.history.loss as number[] };
}

beforeAll(async () => {
  await useBackend('cpu');
  registerTfOptimizer(registry);
});

describe('TfOptimizer', () => {
  it('in model.fit, follows tf.train.momentum batch for batch, keeping its state across fit’s tf.tidy', async () => {
    const reference = await fitLosses(tf.train.momentum(0.01, 0.9));
    const before = tf.memory().numTensors;
    const opt = createTfOptimizer({ kind: 'optimizer', component: { type: 'plain-momentum' } }, registry);
    const ours = await fitLosses(opt);
    expect(ours.losses).toHaveLength(6);
    for (let i = 0; i < 6; i++) expect(ours.losses[i]).toBeCloseTo(reference.losses[i]!, 5);
    expect(ours.losses[5]).toBeLessThan(ours.losses[0]! * 0.9);
    expect(opt.iterations).toBe(18); // 3 batches × 6 epochs
    ours.model.dispose();
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
    reference.model.dispose();
  });

  it('in model.fitDataset, follows tf.train.momentum too', async () => {
    const fitDataset = async (optimizer: tf.Optimizer) => {
      const { xs, ys } = data();
      const dataset = tf.data.zip({ xs: tf.data.array(tf.unstack(xs)), ys: tf.data.array(tf.unstack(ys)) }).batch(2);
      const model = makeModel();
      model.compile({ optimizer, loss: 'meanSquaredError' });
      const h = await model.fitDataset(dataset, { epochs: 4, verbose: 0 });
      model.dispose();
      tf.dispose([xs, ys]);
      return h.history.loss as number[];
    };
    const reference = await fitDataset(tf.train.momentum(0.01, 0.9));
    const opt = createTfOptimizer({ kind: 'optimizer', component: { type: 'plain-momentum' } }, registry);
    const ours = await fitDataset(opt);
    for (let i = 0; i < 4; i++) expect(ours[i]).toBeCloseTo(reference[i]!, 5);
    opt.dispose();
  });

  it('is a tf.Optimizer: minimize works inside the caller’s tf.tidy, with state carried over', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const opt = createTfOptimizer({ kind: 'optimizer', component: { type: 'plain-momentum', options: { learningRate: 0.1 } } }, registry);
    // f = Σ w², g = 2w. Step 1 (μ = 0.9): v = (2, −4), w = (0.8, −1.6). Step 2: v = 0.9·(2, −4) + (1.6, −3.2) = (3.4, −6.8), w = (0.46, −0.92).
    tf.tidy(() => void opt.minimize(() => tf.sum(tf.square(w))));
    tf.tidy(() => void opt.minimize(() => tf.sum(tf.square(w))));
    const [a, b] = Array.from(w.dataSync());
    expect(a).toBeCloseTo(0.46, 6);
    expect(b).toBeCloseTo(-0.92, 6);
    opt.dispose();
    w.dispose();
  });

  it('refuses gradients for variables it was not set up for', () => {
    const a = tf.variable(tf.scalar(1));
    const b = tf.variable(tf.scalar(1));
    const opt = createTfOptimizer({ kind: 'optimizer', component: { type: 'plain-momentum' } }, registry);
    opt.minimize(() => tf.square(a), false, [a]);
    expect(() => opt.minimize(() => tf.square(b), false, [b])).toThrow(/set up for the variables .*; got gradients for .* too/);
    opt.dispose();
    tf.dispose([a, b]);
  });

  it('a learned optimizer from a checkpoint survives model.save and tf.loadLayersModel, φ and slots included', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-tfopt-'));
    writeSnapshot(dir, 'best', { metaOptimizer: { type: 'learned-momentum', options: {} }, weights: { logLr: tf.scalar(Math.log(0.02)) } });
    const opt = tfOptimizerFromCheckpoint(dir, registry);
    const { model } = await fitLosses(opt, makeModel(), 2);
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (artifacts) => ((saved = artifacts), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })), { includeOptimizer: true });
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    const restored = loaded.optimizer as TfOptimizer;
    expect(restored).toBeInstanceOf(TfOptimizer);
    expect(restored.component).toEqual({ type: 'learned-momentum', options: {} });
    expect(restored.iterations).toBe(opt.iterations);
    // The same next steps as the original: same φ (lr 0.02), same velocities, same weights.
    const more = async (m: tf.LayersModel) => {
      const { xs, ys } = data();
      const h = await m.fit(xs, ys, { epochs: 2, batchSize: 2, shuffle: false, verbose: 0 });
      tf.dispose([xs, ys]);
      return h.history.loss as number[];
    };
    const a = await more(model);
    const b = await more(loaded);
    expect(b[0]).toBeCloseTo(a[0]!, 6);
    expect(b[1]).toBeCloseTo(a[1]!, 6);
    // Without the slots (a fresh optimizer from the same config, on the model as saved) the losses differ: the test can fail.
    const again = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    const fresh = TfOptimizer.fromConfig(TfOptimizer, opt.getConfig()) as TfOptimizer;
    again.compile({ optimizer: fresh, loss: 'meanSquaredError' });
    const c = await more(again);
    expect(Math.abs(c[0]! - b[0]!)).toBeGreaterThan(1e-4);
    again.dispose();
    for (const m of [model, loaded]) m.dispose();
    for (const o of [opt, restored, fresh]) o.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs a per-group learned optimizer with groups "conv-fc" (rank-4 variables in conv), and keeps the grouping in its config', () => {
    const component = { type: 'per-group', options: { groups: { conv: { type: 'learned-momentum' }, fc: { type: 'learned-momentum' } } } };
    const weights = { 'conv/logLr': tf.scalar(Math.log(0.1)), 'fc/logLr': tf.scalar(Math.log(0.01)) };
    const opt = createTfOptimizer({ kind: 'meta-optimizer', component, weights, groups: 'conv-fc' }, registry);
    const twin = TfOptimizer.fromConfig(TfOptimizer, opt.getConfig()) as TfOptimizer;
    const ungrouped = createTfOptimizer({ kind: 'meta-optimizer', component, weights }, registry);
    // f = Σ k² + Σ b², g = 2·(k, b); a first momentum step moves k by −0.1·2k and b by −0.01·2b.
    for (const o of [opt, twin]) {
      const k = tf.variable(tf.ones([1, 1, 1, 2]));
      const b = tf.variable(tf.ones([3]));
      tf.tidy(() => void o.minimize(() => tf.add(tf.sum(tf.square(k)), tf.sum(tf.square(b))) as tf.Scalar, false, [k, b]));
      expect(Array.from(k.dataSync())).toEqual([expect.closeTo(0.8, 6), expect.closeTo(0.8, 6)]);
      expect(Array.from(b.dataSync()).map((x) => x.toFixed(6))).toEqual(['0.980000', '0.980000', '0.980000']);
      tf.dispose([k, b]);
    }
    const v = tf.variable(tf.ones([2]));
    expect(() => ungrouped.minimize(() => tf.sum(tf.square(v)), false, [v])).toThrow(/group "all", which has no optimizer here \(groups: conv, fc\)/);
    for (const o of [opt, twin, ungrouped]) o.dispose();
    tf.dispose([v, ...Object.values(weights)]);
  });

  it('weights that do not fit, or a config without them, are errors that say so', () => {
    expect(() => createTfOptimizer({ kind: 'meta-optimizer', component: { type: 'learned-momentum' }, weights: { other: tf.scalar(0) } }, registry)).toThrow(
      /learned optimizer \{"type":"learned-momentum"\}: expected a scalar weight "logLr"/,
    );
    const config = createTfOptimizer({ kind: 'optimizer', component: { type: 'plain-momentum' } }, registry).getConfig();
    expect(() => TfOptimizer.fromConfig(TfOptimizer, { ...config, kind: 'meta-optimizer' })).toThrow(/kind must be/);
  });
});
