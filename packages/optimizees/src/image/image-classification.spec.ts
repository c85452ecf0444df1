import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, SPLITS, useBackend, type NamedTensors, type Split } from '@l2l/core';
import { userErrorMessage } from '@l2l/core/testing';
import { clearImageDatasetCache, loadImageDataset, scalePixels, writeImageDataset } from '../data/datasets';
import { createMnistMlpFamily } from '../mlp/mnist-mlp';
import { ImageClassificationData, imageSplitLayout, pixelTensor, type ImageRows, type ImageSplitOptions, type TestMetrics } from './image-classification';

let root: string;
/**
 * 1×2-pixel images, 3 classes. Training file: 24 images whose two pixels are both the row index (0–23), so
 * a pixel tells which row it came from; test file: 6 images with pixels 200 + row. With N = 24 the default
 * layout keeps k = 2: train rows 0–19, validation 20–21, test 22–23.
 */
let dir: string;
const N = 24;
const TEST = 6;

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-image-'));
  dir = path.join(root, 'rows');
  writeImageDataset(dir, {
    rows: 1,
    cols: 2,
    train: { images: Array.from({ length: N * 2 }, (_, i) => Math.floor(i / 2)), labels: Array.from({ length: N }, (_, i) => i % 3) },
    test: { images: Array.from({ length: TEST * 2 }, (_, i) => 200 + Math.floor(i / 2)), labels: Array.from({ length: TEST }, (_, i) => (i + 1) % 3) },
  });
});
afterAll(() => {
  clearImageDatasetCache();
  fs.rmSync(root, { recursive: true, force: true });
});

const dataset = () => loadImageDataset({ dataset: 'idx', path: dir });
const defaults: ImageSplitOptions = { trainExamples: null, heldOutExamples: null, testExamples: null };
const span = (r: ImageRows) => [r.file, r.start, r.end];
/** The row (training file) or 200 + row (test file) each image of a batch came from. */
const rowsOf = (images: tf.Tensor): number[] => {
  const v = images.dataSync();
  return Array.from({ length: v.length / 2 }, (_, i) => Math.round(v[2 * i]! * 255));
};
const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);

describe('image split layout', () => {
  it('is train [0, N−2k), validation [N−2k, N−k), test [N−k, N) of the training file; metrics the test file', () => {
    const layout = imageSplitLayout(dataset(), defaults, 'spec');
    expect(span(layout.train)).toEqual(['train', 0, 20]);
    expect(span(layout.validation)).toEqual(['train', 20, 22]);
    expect(span(layout.test)).toEqual(['train', 22, 24]);
    expect(span(layout.metrics)).toEqual(['test', 0, 6]);
    expect(Array.from(layout.validation.pixels)).toEqual([20, 20, 21, 21]);
    expect(Array.from(layout.test.labels)).toEqual([22 % 3, 23 % 3]);
  });

  it('is MNIST\'s 0–50k, 50–55k, 55–60k and the 10k test images by default', () => {
    const fake = { features: 1, train: { count: 60000, pixels: new Uint8Array(60000), labels: new Uint8Array(60000) }, test: { count: 10000, pixels: new Uint8Array(10000), labels: new Uint8Array(10000) } };
    const layout = imageSplitLayout(fake as never, defaults, 'spec');
    expect([layout.train, layout.validation, layout.test, layout.metrics].map(span)).toEqual([
      ['train', 0, 50000],
      ['train', 50000, 55000],
      ['train', 55000, 60000],
      ['test', 0, 10000],
    ]);
  });

  it('takes trainExamples, heldOutExamples and testExamples, and rejects what does not fit with a UserError naming the option', () => {
    const layout = imageSplitLayout(dataset(), { trainExamples: 5, heldOutExamples: 4, testExamples: 3 }, 'spec');
    expect([layout.train, layout.validation, layout.test, layout.metrics].map(span)).toEqual([
      ['train', 0, 5],
      ['train', 16, 20],
      ['train', 20, 24],
      ['test', 0, 3],
    ]);
    const message = (o: Partial<typeof defaults>) => userErrorMessage(() => imageSplitLayout(dataset(), { ...defaults, ...o }, 'optimizee "x"'));
    expect(message({ trainExamples: 21 })).toMatch(/^optimizee "x": trainExamples is 21 but the train split of .* holds only 20 images/);
    expect(message({ heldOutExamples: 12 })).toMatch(/too few for a train split plus 12 validation and 12 test images \(heldOutExamples\)/);
    expect(message({ testExamples: 7 })).toMatch(/testExamples is 7 but .*t10k-images-idx3-ubyte holds only 6 images/);
  });
});

describe('ImageClassificationData', () => {
  const data = () => new ImageClassificationData(dataset(), defaults, 'spec');

  it('draws each split\'s minibatches only from its own rows, with their labels', () => {
    const want: Record<Split, number[]> = { train: range(0, 20), validation: [20, 21], test: [22, 23] };
    for (const split of SPLITS) {
      const seen = new Set<number>();
      for (let step = 0; step < 5; step++) {
        const b = data().batch(split, 16, Rng.from(1, step));
        const rows = rowsOf(b.images!);
        const labels = (b.labels!.arraySync() as number[][]).map((l) => l.indexOf(1));
        rows.forEach((r, i) => expect(labels[i]).toBe(r % 3));
        rows.forEach((r) => seen.add(r));
        tf.dispose(Object.values(b));
      }
      expect([...seen].sort((a, b) => a - b)).toEqual(want[split].filter((r) => seen.has(r)));
      expect(seen.size).toBeGreaterThan(want[split].length / 2); // not stuck on one row
    }
  });

  it('scores accuracy and cross-entropy by hand, in chunks, leaving no tensor behind', () => {
    // Logits (x0, 0, 0.1): class 0 when the pixel is above 0.1.
    const logitsOf = (x: tf.Tensor2D) => tf.concat([tf.slice(x, [0, 0], [-1, 1]), tf.zerosLike(tf.slice(x, [0, 0], [-1, 1])), tf.fill([x.shape[0], 1], 0.1)], 1) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const m = data().testMetrics(logitsOf) as TestMetrics;
    expect(tf.memory().numTensors).toBe(before);
    let correct = 0;
    let loss = 0;
    for (let i = 0; i < TEST; i++) {
      const z = [(200 + i) / 255, 0, 0.1];
      const label = (i + 1) % 3;
      if (label === 0) correct++; // z0 > 0.1 always wins
      loss += Math.log(z.reduce((s, v) => s + Math.exp(v), 0)) - z[label]!;
    }
    expect(m.testAccuracy).toBe(correct / TEST);
    expect(m.testLoss).toBeCloseTo(loss / TEST, 6);
    const full = data().fullLoss('validation', logitsOf);
    const ref = [20, 21].reduce((s, r) => {
      const z = [r / 255, 0, 0.1];
      return s + Math.log(z.reduce((a, v) => a + Math.exp(v), 0)) - z[r % 3]!;
    }, 0) / 2;
    expect(full).toBeCloseTo(ref, 6);
  });
});

describe('mnist-mlp on the split layout', () => {
  const family = () => createMnistMlpFamily({ dataset: 'idx', path: dir, hidden: [], batchSize: 32 });

  it('a test-split task never reads a validation or training image; its metrics never read an image it trained on', () => {
    const score = jest.spyOn(ImageClassificationData.prototype, 'scoreSteps');
    try {
      const task = family().build(family().sample(7, 'test'));
      const params = task.initParams(0);
      const trained = new Set<number>();
      for (let step = 0; step < 20; step++) {
        const b = task.batch(step, 3);
        rowsOf(b.images!).forEach((r) => trained.add(r));
        tf.dispose(Object.values(b));
      }
      expect([...trained].sort()).toEqual([22, 23]);

      const m = task.metrics(params) as Record<string, number>;
      const read = score.mock.calls.map(([rows]) => rows);
      expect(read.map(span)).toEqual([['test', 0, TEST]]);
      for (const r of read) for (const p of r.pixels) expect(p).toBeGreaterThanOrEqual(200); // the test file only
      expect(Object.keys(m).sort()).toEqual(['testAccuracy', 'testLoss']);

      score.mockClear();
      const full = task.fullLoss(params);
      expect(score.mock.calls.map(([rows]) => span(rows))).toEqual([['train', 22, 24]]);
      // fullLoss is the mean loss over exactly the rows it trains on: the same as the loss of a batch of those two rows.
      const both = { images: tf.tensor2d([22 / 255, 22 / 255, 23 / 255, 23 / 255], [2, 2]), labels: tf.oneHot([22 % 3, 23 % 3], 3).toFloat() };
      const l = task.loss(params, both);
      expect(full).toBeCloseTo(l.dataSync()[0]!, 6);
      tf.dispose([l, ...Object.values(both), ...Object.values(params as NamedTensors)]);
    } finally {
      score.mockRestore();
    }
  });

  it('validation tasks train on the validation rows, train tasks on the train rows', () => {
    for (const [split, rows] of [['validation', [20, 21]], ['train', range(0, 20)]] as const) {
      const task = family().build(family().sample(1, split));
      for (let step = 0; step < 10; step++) {
        const b = task.batch(step, 0);
        for (const r of rowsOf(b.images!)) expect(rows).toContain(r);
        tf.dispose(Object.values(b));
      }
    }
  });
});

// Last in the file: it switches backends.
describe.each(['wasm', 'cpu'] as const)('pixelTensor on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('holds exactly scalePixels\' values (float64 byte / 255, rounded) for every byte, leaving no tensor behind', () => {
    const bytes = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
    expect(new Set(bytes).size).toBe(256);
    const before = tf.memory().numTensors;
    const t = pixelTensor(bytes, 2, 256);
    expect(t.shape).toEqual([2, 256]);
    expect(t.dtype).toBe('float32');
    const got = t.dataSync();
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    const want = scalePixels(bytes);
    for (let i = 0; i < bytes.length; i++) {
      if (got[i] !== want[i]) throw new Error(`byte ${bytes[i]}: ${got[i]} vs ${want[i]}`);
    }
    expect(got[bytes.indexOf(51)]).toBe(Math.fround(0.2));
  });

  it('rejects bytes that are not n × features', () => {
    expect(() => pixelTensor(new Uint8Array(5), 2, 3)).toThrow(/5 bytes are not 2 × 3/);
  });
});
