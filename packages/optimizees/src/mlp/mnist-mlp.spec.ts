import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ComponentRegistry, createContainer, Rng, SPLITS, type NamedTensors, type Split, type TaskConfig } from '@l2l/core';
import { checkTaskFamily } from '@l2l/core/testing';
import { clearImageDatasetCache, scalePixels, writeImageDataset } from '../data/datasets';
import { optimizeesModule } from '../optimizees-module';
import { createMnistMlpFamily, mnistMlp, type MnistMlpOptions } from './mnist-mlp';
import { MLP_ACTIVATIONS, type MlpActivation, type MlpLayerShape } from './network';
import { userError } from '../spec-helpers';

let root: string;
/** 2×2-pixel images, 3 classes: 12 training images with pixels < 128 (rows 0–9 train, 10 validation, 11 test), 9 test images with pixels ≥ 128. */
let tinyDir: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-mlp-'));
  tinyDir = path.join(root, 'tiny');
  const rng = new Rng(7);
  const pixels = (n: number, low: number) => Array.from({ length: n }, () => low + rng.int(128));
  writeImageDataset(tinyDir, {
    rows: 2,
    cols: 2,
    train: { images: pixels(12 * 4, 0), labels: Array.from({ length: 12 }, (_, i) => i % 3) },
    test: { images: pixels(9 * 4, 128), labels: Array.from({ length: 9 }, (_, i) => (i * 2) % 3) },
  });
});
afterAll(() => {
  clearImageDatasetCache();
  fs.rmSync(root, { recursive: true, force: true });
});

const tiny = (options: Partial<MnistMlpOptions> = {}) => createMnistMlpFamily({ dataset: 'idx', path: tinyDir, ...options });

function disposeNamed(p: NamedTensors): void {
  for (const t of Object.values(p)) t.dispose();
}

function shapesOf(p: NamedTensors): Record<string, number[]> {
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.shape]));
}


/** Independent float64 forward pass and mean cross-entropy. */
function refLoss(p: Record<string, Float64Array>, layers: readonly MlpLayerShape[], x: number[][], labels: number[], act: MlpActivation): number {
  const f: Record<MlpActivation, (z: number) => number> = {
    sigmoid: (z) => 1 / (1 + Math.exp(-z)),
    relu: (z) => Math.max(0, z),
    tanh: Math.tanh,
    elu: (z) => (z > 0 ? z : Math.exp(z) - 1),
  };
  let total = 0;
  x.forEach((row, r) => {
    let h = row;
    layers.forEach(({ inputs, outputs }, i) => {
      const k = p[`layer${i}/kernel`]!;
      const b = p[`layer${i}/bias`]!;
      const z = Array.from({ length: outputs }, (_, o) => {
        let s = b[o]!;
        for (let j = 0; j < inputs; j++) s += h[j]! * k[j * outputs + o]!;
        return s;
      });
      h = i < layers.length - 1 ? z.map(f[act]) : z;
    });
    const m = Math.max(...h);
    const lse = m + Math.log(h.reduce((s, z) => s + Math.exp(z - m), 0));
    total += lse - h[labels[r]!]!;
  });
  return total / x.length;
}

describe('mnist-mlp', () => {
  describe('parameters', () => {
    it.each([
      [[], { 'layer0/kernel': [4, 3], 'layer0/bias': [3] }],
      [[20], { 'layer0/kernel': [4, 20], 'layer0/bias': [20], 'layer1/kernel': [20, 3], 'layer1/bias': [3] }],
      [[8, 6], { 'layer0/kernel': [4, 8], 'layer0/bias': [8], 'layer1/kernel': [8, 6], 'layer1/bias': [6], 'layer2/kernel': [6, 3], 'layer2/bias': [3] }],
    ])('hidden %j gives named kernels [in, out] and biases', (hidden, shapes) => {
      const task = tiny({ hidden }).build({ family: 'mnist-mlp', split: 'train', seed: 1 });
      const params = task.initParams(0);
      expect(shapesOf(params)).toEqual(shapes);
      for (const p of Object.values(params)) expect(p.dtype).toBe('float32');
      disposeNamed(params);
    });

    it('defaults to the paper: 20 sigmoid units, batch 128, weights and biases ~ N(0, 0.01²)', () => {
      const family = tiny({ hidden: [500] });
      expect(family.options).toMatchObject({ activation: 'sigmoid', batchSize: 128, init: 'normal', initScale: 0.01 });
      expect(tiny().options.hidden).toEqual([20]);
      const params = family.build(family.sample(0, 'train')).initParams(3);
      const k = Array.from(params['layer0/kernel']!.dataSync());
      const mean = k.reduce((s, v) => s + v, 0) / k.length;
      const std = Math.sqrt(k.reduce((s, v) => s + (v - mean) ** 2, 0) / k.length);
      expect(Math.abs(mean)).toBeLessThan(0.002);
      expect(std).toBeGreaterThan(0.009);
      expect(std).toBeLessThan(0.011);
      expect(params['layer0/bias']!.dataSync().some((v) => v !== 0)).toBe(true);
      disposeNamed(params);
    });

    it('glorot-uniform and he-normal scale kernels by fan and zero the biases', () => {
      for (const init of ['glorot-uniform', 'he-normal'] as const) {
        const params = tiny({ hidden: [400], init }).build({ family: 'mnist-mlp', split: 'train', seed: 1 }).initParams(0);
        const k = Array.from(params['layer1/kernel']!.dataSync());
        if (init === 'glorot-uniform') {
          const limit = Math.sqrt(6 / (400 + 3));
          expect(Math.max(...k.map(Math.abs))).toBeLessThanOrEqual(limit);
          expect(Math.max(...k.map(Math.abs))).toBeGreaterThan(0.9 * limit);
        } else {
          const std = Math.sqrt(k.reduce((s, v) => s + v * v, 0) / k.length);
          expect(std).toBeGreaterThan(0.9 * Math.sqrt(2 / 400));
          expect(std).toBeLessThan(1.1 * Math.sqrt(2 / 400));
        }
        expect(Array.from(params['layer1/bias']!.dataSync())).toEqual([0, 0, 0]);
        disposeNamed(params);
      }
    });

    it('initParams is a function of the task and the seed', () => {
      const family = tiny();
      const config = family.sample(0, 'train');
      const values = (c: TaskConfig, seed: number) => {
        const p = family.build(c).initParams(seed);
        const v = Array.from(p['layer0/kernel']!.dataSync());
        disposeNamed(p);
        return v;
      };
      expect(values(config, 5)).toEqual(values(structuredClone(config), 5));
      expect(values(config, 5)).not.toEqual(values(config, 6));
      expect(values(config, 5)).not.toEqual(values(family.sample(1, 'train'), 5));
    });
  });

  describe('loss', () => {
    let handDir: string;
    beforeAll(() => {
      handDir = path.join(root, 'hand');
      writeImageDataset(handDir, { rows: 1, cols: 2, train: { images: [255, 0, 0, 255, 0, 0, 0, 0], labels: [0, 1, 0, 1] }, test: { images: [255, 0], labels: [1] } });
    });

    it('is the mean softmax cross-entropy (hand-computed case)', () => {
      const task = createMnistMlpFamily({ dataset: 'idx', path: handDir, hidden: [], heldOutExamples: 1 }).build({ family: 'mnist-mlp', split: 'train', seed: 0 });
      const loss = (scale: number, labels: number[][]) =>
        tf.tidy(() => {
          const params = { 'layer0/kernel': tf.tensor2d([[scale, 0], [0, scale]]), 'layer0/bias': tf.tensor1d([0, 0]) };
          const batch = { images: tf.tensor2d([[1, 0], [0, 1]]), labels: tf.tensor2d(labels) };
          return task.loss(params, batch).dataSync()[0]!;
        });
      // logits [1, 0] and [0, 1]: each example's loss is log(1 + e^-1) when right, log(1 + e) when wrong.
      expect(loss(1, [[1, 0], [0, 1]])).toBeCloseTo(Math.log(1 + Math.exp(-1)), 6);
      expect(loss(1, [[1, 0], [1, 0]])).toBeCloseTo((Math.log(1 + Math.exp(-1)) + Math.log(1 + Math.E)) / 2, 6);
      // Numerically stable at huge logits: 0 when right, the logit gap when wrong.
      expect(loss(1000, [[1, 0], [0, 1]])).toBeCloseTo(0, 6);
      expect(loss(1000, [[0, 1], [0, 1]])).toBeCloseTo(500, 3);
    });

    it.each(MLP_ACTIVATIONS.map((a) => [a]))('matches a float64 reference, and its gradient matches finite differences (%s)', (activation) => {
      const task = tiny({ hidden: [3], activation, batchSize: 5, initScale: 0.7 }).build({ family: 'mnist-mlp', split: 'train', seed: 2 });
      const params = task.initParams(1);
      const batch = task.batch(0, 1);
      const x = batch.images!.arraySync() as number[][];
      const labels = (batch.labels!.arraySync() as number[][]).map((row) => row.indexOf(1));
      const names = Object.keys(params);
      const [value, grads] = tf.tidy(() => {
        const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => task.loss(Object.fromEntries(names.map((n, i) => [n, xs[i]!])), batch))(
          names.map((n) => params[n]!),
        );
        return [value.dataSync()[0]!, grads.map((g) => Array.from(g.dataSync()))];
      });
      const ref: Record<string, Float64Array> = Object.fromEntries(names.map((n) => [n, Float64Array.from(params[n]!.dataSync())]));
      const at = () => refLoss(ref, task.layers, x, labels, activation);
      expect(Math.abs(value - at()) / at()).toBeLessThan(1e-5);
      const eps = 1e-6;
      names.forEach((n, i) => {
        const p = ref[n]!;
        for (let j = 0; j < p.length; j++) {
          const keep = p[j]!;
          p[j] = keep + eps;
          const up = at();
          p[j] = keep - eps;
          const down = at();
          p[j] = keep;
          const fd = (up - down) / (2 * eps);
          expect(Math.abs(grads[i]![j]! - fd)).toBeLessThan(1e-5 + 1e-3 * Math.abs(fd));
        }
      });
      // Not a degenerate net: the gradient moves every layer.
      for (const g of grads) expect(g.some((v) => Math.abs(v) > 1e-4)).toBe(true);
      disposeNamed(params);
      tf.dispose(Object.values(batch));
    });
  });

  describe('batches', () => {
    const rows = (family: ReturnType<typeof tiny>, split: Split) => {
      const data = family.imageData().rows(split);
      return Array.from({ length: data.count }, (_, i) => ({
        image: Array.from(scalePixels(data.pixels.subarray(i * 4, (i + 1) * 4))),
        label: data.labels[i]!,
      }));
    };

    it('are [batchSize, features] images with one-hot labels, rows of the task\'s split', () => {
      const family = tiny({ batchSize: 7 });
      for (const split of SPLITS) {
        const task = family.build(family.sample(3, split));
        const allowed = rows(family, split);
        for (const step of [0, 1, 2]) {
          const batch = task.batch(step, 9);
          expect(batch.images!.shape).toEqual([7, 4]);
          expect(batch.labels!.shape).toEqual([7, 3]);
          const images = batch.images!.arraySync() as number[][];
          const labels = batch.labels!.arraySync() as number[][];
          images.forEach((image, r) => {
            expect(labels[r]!.reduce((s, v) => s + v, 0)).toBe(1);
            // Each row is a row of this split's images, with its label.
            expect(allowed.some((a) => a.label === labels[r]!.indexOf(1) && a.image.every((v, k) => Math.abs(v - image[k]!) < 1e-7))).toBe(true);
          });
          tf.dispose(Object.values(batch));
        }
      }
    });

    it('are a deterministic function of the task seed, run seed and step', () => {
      const family = tiny({ batchSize: 16 });
      const config = family.sample(0, 'train');
      const get = (c: TaskConfig, step: number, seed: number) => {
        const b = family.build(c).batch(step, seed);
        const v = [b.images!.arraySync(), b.labels!.arraySync()];
        tf.dispose(Object.values(b));
        return v;
      };
      expect(get(config, 4, 1)).toEqual(get(structuredClone(config), 4, 1));
      expect(get(config, 4, 1)).not.toEqual(get(config, 5, 1));
      expect(get(config, 4, 1)).not.toEqual(get(config, 4, 2));
      expect(get(config, 4, 1)).not.toEqual(get(family.sample(1, 'train'), 4, 1));
    });

    it('trainExamples limits training minibatches to the first images', () => {
      const family = tiny({ batchSize: 50, trainExamples: 2 });
      const first = rows(family, 'train').slice(0, 2);
      const batch = family.build(family.sample(0, 'train')).batch(0, 0);
      for (const image of batch.images!.arraySync() as number[][]) {
        expect(first.some((a) => a.image.every((v, k) => Math.abs(v - image[k]!) < 1e-7))).toBe(true);
      }
      tf.dispose(Object.values(batch));
      expect(userError(() => tiny({ trainExamples: 11 }).build(family.sample(0, 'train'))).message).toMatch(/trainExamples is 11 but the train split of .*train-images-idx3-ubyte holds only 10 images/);
    });
  });

  describe('metrics', () => {
    let metricsDir: string;
    const n = 2345; // more than one chunk of 1000
    let pixels: number[];
    let labels: number[];
    beforeAll(() => {
      metricsDir = path.join(root, 'metrics');
      const rng = new Rng(11);
      pixels = Array.from({ length: n * 2 }, () => rng.int(256));
      labels = Array.from({ length: n }, () => rng.int(3));
      writeImageDataset(metricsDir, { rows: 1, cols: 2, train: { images: [0, 0, 0, 0, 0, 0], labels: [0, 1, 2] }, test: { images: pixels, labels } });
    });

    /** Logits (x0, x1, 0.5): predicts 0 or 1 by the brighter pixel, 2 when both are below 0.5. */
    const fixedParams = () => ({ 'layer0/kernel': tf.tensor2d([[1, 0, 0], [0, 1, 0]]), 'layer0/bias': tf.tensor1d([0, 0, 0.5]) });

    function handCount(count: number): { accuracy: number; loss: number } {
      let correct = 0;
      let loss = 0;
      for (let i = 0; i < count; i++) {
        const z = [pixels[2 * i]! / 255, pixels[2 * i + 1]! / 255, 0.5];
        let best = 0;
        for (let c = 1; c < 3; c++) if (z[c]! > z[best]!) best = c;
        if (best === labels[i]) correct++;
        loss += Math.log(z.reduce((s, v) => s + Math.exp(v), 0)) - z[labels[i]!]!;
      }
      return { accuracy: correct / count, loss: loss / count };
    }

    it.each([[null], [1500], [7]])('are the accuracy and mean loss over the test images (testExamples %p), as counted by hand', (testExamples) => {
      const task = createMnistMlpFamily({ dataset: 'idx', path: metricsDir, hidden: [], testExamples, heldOutExamples: 1 }).build({ family: 'mnist-mlp', split: 'train', seed: 0 });
      const params = fixedParams();
      const m = task.metrics(params) as Record<string, number>;
      const want = handCount(testExamples ?? n);
      expect(Object.keys(m).sort()).toEqual(['testAccuracy', 'testLoss']);
      expect(m.testAccuracy).toBe(want.accuracy);
      expect(m.testAccuracy).toBeGreaterThan(0);
      expect(m.testAccuracy).toBeLessThan(1);
      expect(m.testLoss).toBeCloseTo(want.loss, 5);
      disposeNamed(params);
    });

    it('lie in [0, 1] for a trained-from-scratch net', () => {
      const task = tiny().build({ family: 'mnist-mlp', split: 'test', seed: 0 });
      const params = task.initParams(0);
      const m = task.metrics(params) as Record<string, number>;
      expect(m.testAccuracy).toBeGreaterThanOrEqual(0);
      expect(m.testAccuracy).toBeLessThanOrEqual(1);
      expect(m.testLoss).toBeCloseTo(Math.log(3), 1);
      disposeNamed(params);
    });
  });

  it('honours the task contracts (checkTaskFamily)', async () => {
    await checkTaskFamily(mnistMlp, { options: { dataset: 'idx', path: tinyDir, hidden: [3], batchSize: 4 } });
    await checkTaskFamily(mnistMlp, { options: { dataset: 'idx', path: 'tiny', hidden: [], activation: 'relu' }, ctx: { baseDir: root } });
  });

  it('leaks no tensors: build, init, batch, loss, gradients, metrics, dispose', () => {
    const family = tiny({ hidden: [5, 4], batchSize: 8 });
    family.dataset();
    const before = tf.memory().numTensors;
    const task = family.build(family.sample(0, 'train'));
    const params = task.initParams(0);
    for (let step = 0; step < 3; step++) {
      tf.tidy(() => {
        const batch = task.batch(step, 0);
        task.loss(params, batch);
        const names = Object.keys(params);
        tf.grads((...xs: tf.Tensor[]) => task.loss(Object.fromEntries(names.map((nm, i) => [nm, xs[i]!])), batch))(names.map((nm) => params[nm]!));
      });
      task.metrics(params);
    }
    disposeNamed(params);
    task.dispose();
    family.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  describe('family', () => {
    it('samples deterministic configs whose split is part of the seed', () => {
      const family = tiny();
      const a = family.sample(4, 'train');
      expect(a).toEqual({ family: 'mnist-mlp', split: 'train', seed: expect.any(Number) });
      expect(family.sample(4, 'train')).toEqual(a);
      const b = family.sample(4, 'test');
      expect(b.split).toBe('test');
      expect(b.seed).not.toBe(a.seed);
      expect(family.sample(5, 'train').seed).not.toBe(a.seed);
    });

    it('loads the data set once and shares it among its tasks', () => {
      const family = tiny();
      const t1 = family.build(family.sample(0, 'train'));
      const t2 = family.build(family.sample(1, 'test'));
      expect(family.dataset()).toBe(tiny().dataset());
      expect(t1.layers).toEqual(t2.layers);
    });

    it('rejects configs of another family', () => {
      expect(userError(() => tiny().build({ family: 'quadratic', split: 'train', seed: 0 })).message).toMatch(/"quadratic", not "mnist-mlp"/);
      expect(userError(() => tiny().build({ family: 'mnist-mlp', split: 'valid' as 'train', seed: 0 })).message).toMatch(/split/);
    });
  });

  describe('as a registered component', () => {
    const registry = new ComponentRegistry([{ source: '@l2l/optimizees', components: [mnistMlp] }]);
    const ctx = () => ({ seed: 0, baseDir: root });
    const create = (options: Record<string, unknown>) => registry.create('optimizee', { type: 'mnist-mlp', options: options as never }, ctx());

    it('is wired into optimizeesModule', () => {
      const fromContainer = createContainer(optimizeesModule).get(ComponentRegistry);
      expect(fromContainer.get('optimizee', 'mnist-mlp').source).toBe('@l2l/optimizees');
    });

    it('resolves a relative path against the config\'s directory', () => {
      const family = create({ dataset: 'idx', path: 'tiny', hidden: [] });
      const task = family.build(family.sample(0, 'train'));
      expect(family.type).toBe('mnist-mlp');
      const params = task.initParams(0);
      expect(shapesOf(params)['layer0/kernel']).toEqual([4, 3]);
      disposeNamed(params);
    });

    it.each([
      [{ hidden: [0] }, /hidden\[0\] must be an integer ≥ 1, got 0/],
      [{ hidden: 'x' }, /hidden must be an array/],
      [{ hidden: [20.5] }, /hidden\[0\] must be an integer/],
      [{ activation: 'swish' }, /activation must be one of "sigmoid", "relu", "tanh", "elu"/],
      [{ batchSize: 0 }, /batchSize must be an integer ≥ 1/],
      [{ init: 'zeros' }, /init must be one of/],
      [{ initScale: 0 }, /initScale must be a number > 0/],
      [{ dataset: 'cifar10' }, /dataset must be one of "mnist", "fashion-mnist", "idx"/],
      [{ trainExamples: 0 }, /trainExamples must be an integer or null ≥ 1/],
      [{ hiden: [20] }, /unknown field "hiden"/],
      [{ dataset: 'idx' }, /dataset "idx" needs path/],
    ])('rejects bad options %j with a UserError naming the field', (options, message) => {
      expect(userError(() => create(options)).message).toMatch(message);
    });

    it('a missing data directory is a UserError at build time naming the path', () => {
      const family = create({ dataset: 'fashion-mnist', path: 'no-such-dir' });
      const e = userError(() => family.build(family.sample(0, 'train')));
      expect(e.message).toContain(path.join(root, 'no-such-dir'));
      expect(e.message).toMatch(/apt-get install dataset-fashion-mnist/);
    });
  });
});
