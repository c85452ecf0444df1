import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend, type NamedTensors } from '@l2l/core';
import { checkTaskFamily } from '@l2l/core/testing';
import { CIFAR10_PIXELS, writeCifar10Dir } from '../data/cifar10';
import { clearImageDatasetCache, loadImageDataset, writeImageDataset } from '../data/datasets';
import { BATCH_NORM_EPSILON } from './layers';
import { convNet, createConvNetFamily, type ConvNetOptions } from './conv-net';
import { measureTaskSizes, userError } from '../spec-helpers';

let root: string;
/** 6×6 images, 3 classes: 24 training images (rows 0–19 train, 20–21 validation, 22–23 test), 6 test images. */
let tinyDir: string;
let cifarDir: string;

beforeAll(async () => {
  await useBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-conv-net-'));
  tinyDir = path.join(root, 'tiny');
  const rng = new Rng(11);
  const pixels = (n: number) => Array.from({ length: n }, () => rng.int(256));
  writeImageDataset(tinyDir, {
    rows: 6,
    cols: 6,
    train: { images: pixels(24 * 36), labels: Array.from({ length: 24 }, (_, i) => i % 3) },
    test: { images: pixels(6 * 36), labels: Array.from({ length: 6 }, (_, i) => i % 3) },
  });
  cifarDir = path.join(root, 'cifar');
  const records = (n: number, seed: number) => {
    const r = new Rng(seed);
    return { pixels: Uint8Array.from({ length: n * CIFAR10_PIXELS }, () => r.int(256)), labels: Uint8Array.from({ length: n }, () => r.int(10)) };
  };
  writeCifar10Dir(cifarDir, { train: [1, 2, 3, 4, 5].map((s) => records(6, s)), test: records(4, 6) });
});
afterAll(async () => {
  clearImageDatasetCache();
  fs.rmSync(root, { recursive: true, force: true });
  await useBackend('cpu');
});

function disposeNamed(p: NamedTensors): void {
  for (const t of Object.values(p)) t.dispose();
}


/**
 * Independent float64 forward pass of a one-block net (3×3 SAME conv → batch norm → ReLU → 2×2 SAME max
 * pool → dense with batch norm and ReLU → dense logits) and its mean cross-entropy, written with loops.
 */
function refLoss(p: Record<string, Float64Array>, x: Float64Array, n: number, side: number, labels: number[], ch: number, hidden: number, classes: number): number {
  const k = 3;
  const conv = new Float64Array(n * side * side * ch);
  for (let b = 0; b < n; b++)
    for (let r = 0; r < side; r++)
      for (let c = 0; c < side; c++)
        for (let o = 0; o < ch; o++) {
          let s = 0;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const [rr, cc] = [r + i - 1, c + j - 1];
              if (rr < 0 || cc < 0 || rr >= side || cc >= side) continue;
              s += x[(b * side + rr) * side + cc]! * p['conv0/kernel']![((i * k + j) * 1 + 0) * ch + o]!;
            }
          conv[((b * side + r) * side + c) * ch + o] = s;
        }
  const bn = (v: Float64Array, rows: number, cols: number, offset: Float64Array) => {
    for (let o = 0; o < cols; o++) {
      let m = 0;
      for (let i = 0; i < rows; i++) m += v[i * cols + o]!;
      m /= rows;
      let varc = 0;
      for (let i = 0; i < rows; i++) varc += (v[i * cols + o]! - m) ** 2;
      varc /= rows;
      for (let i = 0; i < rows; i++) v[i * cols + o] = Math.max(0, (v[i * cols + o]! - m) / Math.sqrt(varc + BATCH_NORM_EPSILON) + offset[o]!);
    }
  };
  bn(conv, n * side * side, ch, p['conv0/offset']!);
  const half = Math.ceil(side / 2);
  const pooled = new Float64Array(n * half * half * ch);
  for (let b = 0; b < n; b++)
    for (let r = 0; r < half; r++)
      for (let c = 0; c < half; c++)
        for (let o = 0; o < ch; o++) {
          let m = -Infinity;
          for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) if (2 * r + i < side && 2 * c + j < side) m = Math.max(m, conv[((b * side + 2 * r + i) * side + 2 * c + j) * ch + o]!);
          pooled[((b * half + r) * half + c) * ch + o] = m;
        }
  const features = half * half * ch;
  const dense = (v: Float64Array, fin: number, fout: number, name: string) => {
    const out = new Float64Array(n * fout);
    for (let b = 0; b < n; b++)
      for (let o = 0; o < fout; o++) {
        let s = p[`${name}/bias`]![o]!;
        for (let i = 0; i < fin; i++) s += v[b * fin + i]! * p[`${name}/kernel`]![i * fout + o]!;
        out[b * fout + o] = s;
      }
    return out;
  };
  const h = dense(pooled, features, hidden, 'dense0');
  bn(h, n, hidden, p['dense0/offset']!);
  const logits = dense(h, hidden, classes, 'denseout');
  let loss = 0;
  for (let b = 0; b < n; b++) {
    const row = Array.from(logits.subarray(b * classes, (b + 1) * classes));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, z) => s + Math.exp(z - max), 0));
    loss += lse - row[labels[b]!]!;
  }
  return loss / n;
}

describe('conv-net', () => {
  it('estimate (the pre-flight\'s sizes) against a built MNIST task: coordinates exact, the data and a taped step from below', () => {
    const family = createConvNetFamily({ dataset: 'mnist', layers: 2, channels: 4, dense: [8], batchSize: 16 });
    const estimate = convNet.estimate!(family.options as ConvNetOptions);
    const measured = measureTaskSizes(family);
    expect(estimate.coordinates).toBe(measured.coordinates);
    const mnist = loadImageDataset({ dataset: 'mnist' });
    expect(estimate.bytes).toBe(mnist.train.pixels.byteLength + mnist.test.pixels.byteLength);
    expect(estimate.stepBytes!).toBeLessThanOrEqual(measured.stepBytes);
    expect(estimate.stepBytes!).toBeGreaterThan(measured.stepBytes / 4);
    // The defaults (DeepMind's CIFAR-10 net) on CIFAR-10, by hand: 3 convs 5×5 (3→16, 16→16, 16→16) with offsets, dense 256→32 (+ bias, offset), 32→10.
    expect(convNet.estimate!(createConvNetFamily({ dataset: 'cifar10', path: cifarDir }).options as ConvNetOptions).coordinates).toBe(75 * 16 + 16 + 2 * (400 * 16 + 16) + 256 * 32 + 64 + 330);
    expect(convNet.estimate!(createConvNetFamily({ dataset: 'idx', path: tinyDir }).options as ConvNetOptions)).toEqual({});
  });

  it('honours the task contracts (checkTaskFamily) on a small IDX data set and on CIFAR-10 files', async () => {
    await checkTaskFamily(convNet, { options: { dataset: 'idx', path: tinyDir, layers: 2, channels: 3, kernelSize: 3, dense: [4], batchSize: 4, heldOutExamples: 2 } });
    await checkTaskFamily(convNet, { options: { dataset: 'cifar10', path: cifarDir, layers: 1, channels: 2, dense: [], batchSize: 3, heldOutExamples: 5 }, seeds: [0] });
  });

  it('its defaults are DeepMind\'s CIFAR-10 net: shapes, N(0, 0.01²) weights, zero offsets, conv/fc groups, batch 128', () => {
    const family = createConvNetFamily({ dataset: 'cifar10', path: cifarDir, heldOutExamples: 5 });
    expect(family.options).toMatchObject({ layers: 3, channels: 16, kernelSize: 5, padding: 'same', pooling: 'max', batchNorm: true, activation: 'relu', dense: [32], init: 'normal', initScale: 0.01, batchSize: 128 });
    const task = family.build(family.sample(0, 'train'));
    const params = task.initParams(0);
    expect(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.shape]))).toEqual({
      'conv0/kernel': [5, 5, 3, 16],
      'conv0/offset': [16],
      'conv1/kernel': [5, 5, 16, 16],
      'conv1/offset': [16],
      'conv2/kernel': [5, 5, 16, 16],
      'conv2/offset': [16],
      // 32 → 16 → 8 → 4 after three SAME 2×2 pools.
      'dense0/kernel': [4 * 4 * 16, 32],
      'dense0/bias': [32],
      'dense0/offset': [32],
      'denseout/kernel': [32, 10],
      'denseout/bias': [10],
    });
    const w = params['conv1/kernel']!.dataSync();
    const std = Math.sqrt(Array.from(w).reduce((s, v) => s + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.0095);
    expect(std).toBeLessThan(0.0105);
    expect(Array.from(params['dense0/offset']!.dataSync()).every((v) => v === 0)).toBe(true);
    expect(task.parameterGroups()).toEqual({
      'conv0/kernel': 'conv',
      'conv1/kernel': 'conv',
      'conv2/kernel': 'conv',
      'conv0/offset': 'fc',
      'conv1/offset': 'fc',
      'conv2/offset': 'fc',
      'dense0/kernel': 'fc',
      'dense0/bias': 'fc',
      'dense0/offset': 'fc',
      'denseout/kernel': 'fc',
      'denseout/bias': 'fc',
    });
    const batch = task.batch(0, 0);
    expect(batch.images!.shape).toEqual([128, 3072]);
    const before = tf.memory().numTensors;
    const loss = tf.tidy(() => task.loss(params, batch).dataSync()[0]!);
    expect(tf.memory().numTensors).toBe(before);
    // Tiny random weights: logits ≈ 0, so the loss starts near ln 10.
    expect(Math.abs(loss - Math.log(10))).toBeLessThan(0.05);
    disposeNamed(params);
    tf.dispose(Object.values(batch));
  });

  it('its loss equals an independent float64 forward pass (conv, batch norm, ReLU, max pool, dense)', () => {
    const family = createConvNetFamily({ dataset: 'idx', path: tinyDir, layers: 1, channels: 2, kernelSize: 3, dense: [3], init: 'he-normal', batchSize: 5, heldOutExamples: 2 });
    const task = family.build(family.sample(3, 'train'));
    const params = task.initParams(1);
    // Offsets away from zero so they matter.
    const offsets: NamedTensors = { 'conv0/offset': tf.tensor1d([0.3, -0.1]), 'dense0/offset': tf.tensor1d([0.2, 0, -0.3]) };
    const p = { ...params, ...offsets };
    const batch = task.batch(0, 0);
    const loss = tf.tidy(() => task.loss(p, batch).dataSync()[0]!);
    const p64 = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Float64Array.from(v.dataSync())]));
    const labels = Array.from(tf.tidy(() => tf.argMax(batch.labels!, 1)).dataSync());
    const ref = refLoss(p64, Float64Array.from(batch.images!.dataSync()), 5, 6, labels, 2, 3, 3);
    expect(Math.abs(loss - ref)).toBeLessThan(1e-4 * Math.max(1, ref));
    disposeNamed(params);
    disposeNamed(offsets);
    tf.dispose(Object.values(batch));
  });

  it('Adam on a small conv net over real MNIST lowers training and test loss; metrics leak nothing', () => {
    const family = createConvNetFamily({ layers: 2, channels: 4, dense: [16], batchSize: 32, testExamples: 500, init: 'he-normal' });
    const task = family.build(family.sample(0, 'train'));
    let params = task.initParams(0);
    const names = Object.keys(params);
    const adam = tf.train.adam(0.01);
    const vars = names.map((n) => tf.variable(params[n]!, true, `conv-net-spec-${n}`));
    disposeNamed(params);
    params = Object.fromEntries(names.map((n, i) => [n, vars[i]!]));
    const initial = task.metrics(params) as Record<string, number>;
    const before = tf.memory().numTensors;
    let first = 0;
    let last = 0;
    for (let step = 0; step < 40; step++) {
      const batch = task.batch(step, 0);
      const cost = adam.minimize(() => task.loss(params, batch), true)!;
      if (step < 5) first += cost.dataSync()[0]! / 5;
      if (step >= 35) last += cost.dataSync()[0]! / 5;
      cost.dispose();
      tf.dispose(Object.values(batch));
      if (step === 0) expect(tf.memory().numTensors).toBeGreaterThan(before); // Adam's slots
    }
    const after = tf.memory().numTensors;
    const trained = task.metrics(params) as Record<string, number>;
    expect(tf.memory().numTensors).toBe(after);
    expect(last).toBeLessThan(0.7 * first);
    expect(trained.testLoss!).toBeLessThan(0.7 * initial.testLoss!);
    expect(trained.testAccuracy!).toBeGreaterThan(0.5);
    adam.dispose();
    tf.dispose(vars);
  });

  it('bad options are UserErrors naming the component and the option', () => {
    expect(userError(() => createConvNetFamily({ dataset: 'cifar10' })).message).toMatch(/optimizee "conv-net": dataset "cifar10" needs path/);
    const family = createConvNetFamily({ dataset: 'idx', path: tinyDir, padding: 'valid', layers: 2, kernelSize: 4, heldOutExamples: 2 });
    expect(userError(() => family.build(family.sample(0, 'train'))).message).toMatch(/optimizee "conv-net": conv layer 2 of 2 gets 2×2 images, smaller than kernelSize 4 with padding "valid"/);
    expect(userError(() => createConvNetFamily({ channels: 0 })).message).toMatch(/optimizee "conv-net".*channels/);
  });
});
