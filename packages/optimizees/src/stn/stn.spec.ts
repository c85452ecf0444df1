import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend, type NamedTensors } from '@l2l/core';
import { checkTaskFamily } from '@l2l/core/testing';
import { clearImageDatasetCache, FASHION_MNIST_DEFAULT_DIR, loadImageDataset, writeImageDataset } from '../data/datasets';
import { convStack, denseStack } from '../conv/layers';
import { distortDataset, imageTransform, warpImage, type AffineDistortion } from './affine-distortion';
import { createStnFamily, stn, stnTheta, type StnOptions } from './stn';
import { measureTaskSizes, userError } from '../spec-helpers';

let root: string;
/** 8×8 images, 3 classes: 24 training images, 6 test images. */
let tinyDir: string;
/** The first 1,000 MNIST training and 300 test images, as IDX files. */
let mnistSubset: string;

beforeAll(async () => {
  await useBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-stn-'));
  tinyDir = path.join(root, 'tiny');
  const rng = new Rng(5);
  const pixels = (n: number) => Array.from({ length: n }, () => rng.int(256));
  writeImageDataset(tinyDir, {
    rows: 8,
    cols: 8,
    train: { images: pixels(24 * 64), labels: Array.from({ length: 24 }, (_, i) => i % 3) },
    test: { images: pixels(6 * 64), labels: Array.from({ length: 6 }, (_, i) => i % 3) },
  });
  const mnist = loadImageDataset({ dataset: 'mnist' });
  mnistSubset = path.join(root, 'mnist-subset');
  writeImageDataset(mnistSubset, {
    rows: 28,
    cols: 28,
    train: { images: mnist.train.pixels.subarray(0, 1000 * 784), labels: mnist.train.labels.subarray(0, 1000) },
    test: { images: mnist.test.pixels.subarray(0, 300 * 784), labels: mnist.test.labels.subarray(0, 300) },
  });
});
afterAll(async () => {
  clearImageDatasetCache();
  fs.rmSync(root, { recursive: true, force: true });
  await useBackend('cpu');
});


const small = { dataset: 'idx' as const, path: '', canvas: 12, locLayers: 1, locChannels: 2, locKernelSize: 3, locHidden: 4, layers: 1, channels: 2, kernelSize: 3, batchSize: 4, heldOutExamples: 2 };

describe('affine distortion (RTS)', () => {
  it('warps by hand-checkable transforms: identity, a quarter turn, a shift', () => {
    const src = Uint8Array.from([10, 20, 30, 40, 50, 60, 70, 80, 90]); // 3×3, row-major
    const out = new Uint8Array(9);
    warpImage(src, 3, 3, 1, 3, { angle: 0, scale: 1, dx: 0, dy: 0 }, out);
    expect(Array.from(out)).toEqual(Array.from(src));
    // Rotation by +90° (x right, y down: clockwise on screen): the left column becomes the top row, reversed.
    warpImage(src, 3, 3, 1, 3, { angle: Math.PI / 2, scale: 1, dx: 0, dy: 0 }, out);
    expect(Array.from(out)).toEqual([70, 40, 10, 80, 50, 20, 90, 60, 30]);
    // One pixel right on a 5×5 canvas: the image's centre moves from (2, 2) to (3, 2).
    const big = new Uint8Array(25);
    warpImage(src, 3, 3, 1, 5, { angle: 0, scale: 1, dx: 1, dy: 0 }, big);
    expect(Array.from(big)).toEqual([0, 0, 0, 0, 0, 0, 0, 10, 20, 30, 0, 0, 40, 50, 60, 0, 0, 70, 80, 90, 0, 0, 0, 0, 0]);
  });

  it('draws rotations, scales and positions in the RTS ranges, deterministically, keeping the scaled box on the canvas', () => {
    const d: AffineDistortion = { canvas: 42, maxRotation: 45, minScale: 0.7, maxScale: 1.2, seed: 3 };
    const ts = Array.from({ length: 500 }, (_, i) => imageTransform(d, 28, 28, 'train', i));
    expect(imageTransform(d, 28, 28, 'train', 7)).toEqual(ts[7]);
    expect(imageTransform(d, 28, 28, 'test', 7)).not.toEqual(ts[7]);
    for (const t of ts) {
      expect(Math.abs(t.angle)).toBeLessThanOrEqual(Math.PI / 4);
      expect(t.scale).toBeGreaterThanOrEqual(0.7);
      expect(t.scale).toBeLessThanOrEqual(1.2);
      expect(Math.abs(t.dx)).toBeLessThanOrEqual(Math.max(0, (42 - 28 * t.scale) / 2) + 1e-9);
    }
    // The draws spread over the ranges.
    expect(Math.max(...ts.map((t) => t.angle))).toBeGreaterThan(0.7);
    expect(Math.min(...ts.map((t) => t.scale))).toBeLessThan(0.75);
  });

  it('distorts a data set once: same labels, canvas-sized images, cached per distortion', () => {
    const base = loadImageDataset({ dataset: 'idx', path: tinyDir });
    const d: AffineDistortion = { canvas: 12, maxRotation: 30, minScale: 0.8, maxScale: 1, seed: 1 };
    const x = distortDataset(base, d);
    expect([x.rows, x.cols, x.channels, x.features]).toEqual([12, 12, 1, 144]);
    expect(x.train.labels).toBe(base.train.labels);
    expect(x.train.pixels.length).toBe(24 * 144);
    expect(distortDataset(base, d)).toBe(x);
    expect(distortDataset(base, { ...d, seed: 2 }).train.pixels).not.toEqual(x.train.pixels);
    // Image 5 is exactly the warp of source image 5 with its own transform.
    const one = new Uint8Array(144);
    warpImage(base.train.pixels.subarray(5 * 64, 6 * 64), 8, 8, 1, 12, imageTransform(d, 8, 8, 'train', 5), one);
    expect(x.train.pixels.subarray(5 * 144, 6 * 144)).toEqual(one);
    // Distorting only some rows gives those rows the same images.
    const part = distortDataset(base, d, { train: [[4, 6]], test: [] });
    expect(part.train.pixels.subarray(5 * 144, 6 * 144)).toEqual(one);
    expect(part.train.pixels.subarray(0, 4 * 144).every((v) => v === 0)).toBe(true);
  });
});

describe('stn', () => {
  it('estimate (the pre-flight\'s sizes) against a built MNIST task: coordinates exact, the data and a taped step from below', () => {
    const options = { canvas: 32, outputSize: 16, locLayers: 1, locChannels: 4, locHidden: 8, layers: 1, channels: 4, batchSize: 8, trainExamples: 64, heldOutExamples: 32, testExamples: 64 };
    const family = createStnFamily(options);
    const estimate = stn.estimate!(family.options as StnOptions);
    const measured = measureTaskSizes(family);
    expect(estimate.coordinates).toBe(measured.coordinates);
    const mnist = loadImageDataset({ dataset: 'mnist' });
    const canvases = distortDataset(mnist, { canvas: 32, maxRotation: 45, minScale: 0.7, maxScale: 1.2, seed: 0 }, { train: [], test: [] });
    const held = [mnist, canvases].reduce((n, d) => n + d.train.pixels.byteLength + d.test.pixels.byteLength, 0);
    expect(estimate.bytes).toBe(held);
    expect(estimate.stepBytes!).toBeLessThanOrEqual(measured.stepBytes);
    expect(estimate.stepBytes!).toBeGreaterThan(measured.stepBytes / 4);
    expect(stn.estimate!(createStnFamily({ dataset: 'idx', path: tinyDir }).options as StnOptions)).toEqual({});
  });

  it('honours the task contracts (checkTaskFamily)', async () => {
    await checkTaskFamily(stn, { options: { ...small, path: tinyDir } });
  });

  it('starts at the identity transform, so it first classifies the undistorted canvas; groups conv kernels apart', () => {
    const family = createStnFamily({ ...small, path: tinyDir, outputSize: null, dense: [3] });
    const task = family.build(family.sample(0, 'train'));
    const params = task.initParams(0);
    const batch = task.batch(0, 0);
    const [theta, direct, viaStn] = tf.tidy(() => {
      const x = tf.reshape(batch.images!, [4, 12, 12, 1]) as tf.Tensor4D;
      const arch = task.architecture;
      const h = convStack(params, arch.conv, x);
      const logits = denseStack(params, arch.dense, tf.reshape(h, [4, -1]) as tf.Tensor2D);
      const expected = tf.neg(tf.mean(tf.sum(tf.mul(batch.labels!, tf.logSoftmax(logits)), 1)));
      return [stnTheta(params, arch, x).dataSync().slice(), expected.dataSync()[0]!, task.loss(params, batch).dataSync()[0]!];
    });
    for (let i = 0; i < 4; i++) expect(Array.from(theta.subarray(i * 6, i * 6 + 6))).toEqual([1, 0, 0, 0, 1, 0]);
    expect(viaStn).toBeCloseTo(direct, 5);
    const groups = task.parameterGroups();
    expect(Object.keys(groups).sort()).toEqual(Object.keys(params).sort());
    expect(Object.entries(groups).filter(([, g]) => g === 'conv').map(([n]) => n).sort()).toEqual(['conv0/kernel', 'loc/conv0/kernel']);
    // θ's layer learns: its zero kernel gets a non-zero gradient through the sampler.
    const g = tf.tidy(() => tf.grad((k: tf.Tensor) => task.loss({ ...params, 'loc/denseout/kernel': k }, batch))(params['loc/denseout/kernel']!).abs().sum().dataSync()[0]!);
    expect(g).toBeGreaterThan(0);
    tf.dispose([...Object.values(params), ...Object.values(batch)]);
  });

  it('Adam trains it through the sampler on wasm (MNIST subset, no distortion: RTS needs far more steps than a test affords); no leaks', () => {
    const family = createStnFamily({ dataset: 'idx', path: mnistSubset, locChannels: 4, locLayers: 1, channels: 8, layers: 1, outputSize: 21, batchSize: 32, heldOutExamples: 100, canvas: 28, maxRotation: 0, minScale: 1, maxScale: 1 });
    const task = family.build(family.sample(0, 'train'));
    const init = task.initParams(0);
    const names = Object.keys(init);
    const vars = names.map((n) => tf.variable(init[n]!, true, `stn-spec-${n}`));
    tf.dispose(Object.values(init));
    const params: NamedTensors = Object.fromEntries(names.map((n, i) => [n, vars[i]!]));
    const adam = tf.train.adam(0.002);
    const losses: number[] = [];
    let afterFirst = 0;
    for (let step = 0; step < 40; step++) {
      const batch = task.batch(step, 0);
      const cost = adam.minimize(() => task.loss(params, batch), true)!;
      losses.push(cost.dataSync()[0]!);
      tf.dispose([cost, ...Object.values(batch)]);
      if (step === 0) afterFirst = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(afterFirst);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(losses.slice(-8))).toBeLessThan(0.6 * mean(losses.slice(0, 8)));
    const m = task.metrics(params) as Record<string, number>;
    expect(tf.memory().numTensors).toBe(afterFirst);
    expect(m.testAccuracy).toBeGreaterThan(0.5);
    adam.dispose();
    tf.dispose(vars);
  });

  // Fashion-MNIST is optional (apt-get install dataset-fashion-mnist); CI without it skips this.
  (fs.existsSync(FASHION_MNIST_DEFAULT_DIR) ? it : it.skip)('builds RTS-distorted Fashion-MNIST tasks from the Debian package', () => {
    const family = createStnFamily({ dataset: 'fashion-mnist', locChannels: 2, channels: 2, batchSize: 8, trainExamples: 200, heldOutExamples: 100, testExamples: 100 });
    const task = family.build(family.sample(0, 'train'));
    const data = family.imageData();
    expect(data.dataset.rows).toBe(42);
    // Only the rows tasks and metrics read are generated: train 0–200, validation and test the last 200, metrics 0–100.
    const blank = (pixels: Uint8Array, i: number) => pixels.subarray(i * 1764, (i + 1) * 1764).every((v) => v === 0);
    expect(blank(data.dataset.train.pixels, 199)).toBe(false);
    expect(blank(data.dataset.train.pixels, 200)).toBe(true);
    expect(blank(data.dataset.train.pixels, 59_999)).toBe(false);
    expect(blank(data.dataset.test.pixels, 100)).toBe(true);
    const params = task.initParams(0);
    const batch = task.batch(0, 0);
    const loss = tf.tidy(() => task.loss(params, batch).dataSync()[0]!);
    expect(Number.isFinite(loss)).toBe(true);
    tf.dispose([...Object.values(params), ...Object.values(batch)]);
  });

  it('bad options are UserErrors naming the component and the option', () => {
    expect(userError(() => createStnFamily({ dataset: 'idx' })).message).toMatch(/optimizee "stn": dataset "idx" needs path/);
    expect(userError(() => createStnFamily({ minScale: 1.5, maxScale: 1 })).message).toMatch(/optimizee "stn": minScale 1.5 is larger than maxScale 1/);
    const family = createStnFamily({ ...small, path: tinyDir, padding: 'valid', locLayers: 3, locKernelSize: 5 });
    expect(userError(() => family.build(family.sample(0, 'train'))).message).toMatch(/optimizee "stn" \(localisation net\): conv layer 2 of 3 gets 4×4 images/);
  });
});
