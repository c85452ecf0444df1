/**
 * What every image-classification task family shares: which images each split trains on, minibatches,
 * and the losses and test metrics over many images. Model-free: a family brings its own logits.
 *
 * Layout (for a training file of N images and the official test file; MNIST: N = 60,000, 10,000 test):
 *
 * | split        | its tasks train on (rows of the training file) | MNIST          |
 * |--------------|------------------------------------------------|----------------|
 * | `train`      | [0, N − 2k) (the first `trainExamples` of them) | 0–50k          |
 * | `validation` | [N − 2k, N − k)                                 | 50k–55k        |
 * | `test`       | [N − k, N)                                      | 55k–60k        |
 *
 * with k = `heldOutExamples` (default round(N / 12): 5,000 for MNIST). Test metrics (`testLoss`,
 * `testAccuracy`) score the official test file (its first `testExamples` images), which no task of any
 * split ever trains on. DeepMind's learning-to-learn code trains its meta-test optimizee on MNIST's test
 * images; this layout departs from it so that a "test" metric is measured on unseen images.
 *
 * ```ts
 * const data = new ImageClassificationData(loadImageDataset({ dataset: 'mnist' }), options, 'my-family');
 * const batch = data.batch('train', 128, Rng.from(taskSeed, 'batch', runSeed, step)); // {images, labels}
 * const m = data.testMetrics((x) => logitsOf(params, x));                              // {testAccuracy, testLoss}
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, isSplit, readStep, runSteps, runWhereReadable, UserError, type Batch, type JsonSchema, type Rng, type Split, type Steps, type TaskConfig } from '@l2l/core';
import type { ImageDataset } from '../data/datasets';

/** Options every image family takes (spread `IMAGE_SPLIT_SCHEMA_PROPERTIES` into its schema). */
export interface ImageSplitOptions {
  trainExamples: number | null;
  heldOutExamples: number | null;
  testExamples: number | null;
}

/** JSON Schema properties of `ImageSplitOptions`, with defaults and descriptions. */
export const IMAGE_SPLIT_SCHEMA_PROPERTIES: Record<keyof ImageSplitOptions, JsonSchema> = {
  trainExamples: {
    type: ['integer', 'null'],
    minimum: 1,
    default: null,
    description: 'Train-split tasks use only the first this many images of the training file (null: all images before the validation rows).',
  },
  heldOutExamples: {
    type: ['integer', 'null'],
    minimum: 1,
    default: null,
    description:
      'Images of the training file kept for each held-out split, taken from its end: validation tasks train on [N − 2k, N − k), ' +
      'test tasks on [N − k, N) (null: k = N/12 rounded, 5,000 of MNIST\'s 60,000).',
  },
  testExamples: {
    type: ['integer', 'null'],
    minimum: 1,
    default: null,
    description: 'Test metrics (testLoss, testAccuracy) score only the first this many images of the official test file (null: all).',
  },
};

/** Consecutive rows `[start, end)` of one file of a data set, as a task sees them. */
export interface ImageRows {
  /** Which file: the training file (`train`) or the official test file (`test`). */
  readonly file: 'train' | 'test';
  readonly start: number;
  readonly end: number;
  /** `(end − start) × features` pixel bytes (0–255): image i of these rows is `pixels.subarray(i·features, (i+1)·features)`. */
  readonly pixels: Uint8Array;
  /** `end − start` class indices. */
  readonly labels: Uint8Array;
  readonly count: number;
}

/** Where each split's images lie, in rows of the data set's files. */
export interface ImageSplitLayout {
  /** Rows of the training file the tasks of each split train on. */
  readonly train: ImageRows;
  readonly validation: ImageRows;
  readonly test: ImageRows;
  /** Rows of the official test file that test metrics score; no split trains on them. */
  readonly metrics: ImageRows;
}

function rows(data: ImageDataset, file: 'train' | 'test', start: number, end: number): ImageRows {
  const s = data[file];
  return {
    file,
    start,
    end,
    pixels: s.pixels.subarray(start * data.features, end * data.features),
    labels: s.labels.subarray(start, end),
    count: end - start,
  };
}

/** The split layout of a data set (see the module comment); a UserError naming `component` and the option when it does not fit. */
export function imageSplitLayout(data: ImageDataset, options: ImageSplitOptions, component: string): ImageSplitLayout {
  const n = data.train.count;
  const k = options.heldOutExamples ?? Math.round(n / 12);
  const trainEnd = n - 2 * k;
  if (k < 1 || trainEnd < 1) {
    throw new UserError(
      `${component}: ${data.train.files.images} holds ${n} images, too few for a train split plus ${k} validation and ${k} test images ` +
        '(heldOutExamples); use a larger data set or a smaller heldOutExamples',
    );
  }
  if (options.trainExamples !== null && options.trainExamples > trainEnd) {
    throw new UserError(
      `${component}: trainExamples is ${options.trainExamples} but the train split of ${data.train.files.images} holds only ${trainEnd} images ` +
        `(rows 0–${trainEnd}; the last ${2 * k} are the validation and test splits' images)`,
    );
  }
  if (options.testExamples !== null && options.testExamples > data.test.count) {
    throw new UserError(`${component}: testExamples is ${options.testExamples} but ${data.test.files.images} holds only ${data.test.count} images`);
  }
  return {
    train: rows(data, 'train', 0, options.trainExamples ?? trainEnd),
    validation: rows(data, 'train', trainEnd, n - k),
    test: rows(data, 'train', n - k, n),
    metrics: rows(data, 'test', 0, options.testExamples ?? data.test.count),
  };
}

/** Accuracy and mean cross-entropy on the official test images (`testMetrics`); a type, so it is a Record too. */
export type TestMetrics = { testAccuracy: number; testLoss: number };

/** Images per forward pass when scoring many images (bounds memory, not results). */
export const SCORE_CHUNK = 1000;

/**
 * Pixel bytes as a `[n, features]` tensor in [0, 1]: the same values as `scalePixels` (byte / 255), with the
 * division run by the backend on float32 (for every byte the float32 quotient is the float64 one rounded, which
 * the spec checks on cpu and wasm). With a JavaScript loop dividing its 100,352 bytes, a minibatch of 128 MNIST
 * images took 0.45 ms on wasm, this way 0.22 ms (the 784-20-10 net's loss and gradient on it: 2.2 ms).
 */
export function pixelTensor(bytes: Uint8Array, n: number, features: number): tf.Tensor2D {
  if (bytes.length !== n * features) throw new RangeError(`pixelTensor: ${bytes.length} bytes are not ${n} × ${features}`);
  return tf.tidy(() => tf.div(tf.tensor2d(new Float32Array(bytes), [n, features]), 255));
}

/**
 * One data set seen through the split layout: what an image-classification task needs besides its model.
 * Logits functions take images `[n, features]` in [0, 1] (row-major `rows × cols`; reshape for a conv net)
 * and return logits `[n, classes]`.
 */
export class ImageClassificationData {
  readonly layout: ImageSplitLayout;

  constructor(
    readonly dataset: ImageDataset,
    options: ImageSplitOptions,
    component: string,
  ) {
    this.layout = imageSplitLayout(dataset, options, component);
  }

  /** The images tasks of `split` train on. */
  rows(split: Split): ImageRows {
    return this.layout[split];
  }

  /**
   * A minibatch of `size` images of `split`'s rows, drawn uniformly with replacement from `rng`:
   * `images` [size, features] in [0, 1] and one-hot `labels` [size, classes].
   */
  batch(split: Split, size: number, rng: Rng): Batch {
    const { features, classes } = this.dataset;
    const from = this.rows(split);
    const bytes = new Uint8Array(size * features);
    const labels = new Float32Array(size * classes);
    for (let r = 0; r < size; r++) {
      const i = rng.int(from.count);
      bytes.set(from.pixels.subarray(i * features, (i + 1) * features), r * features);
      labels[r * classes + from.labels[i]!] = 1;
    }
    return { images: pixelTensor(bytes, size, features), labels: tf.tensor2d(labels, [size, classes]) };
  }

  /** Accuracy and mean softmax cross-entropy of `logitsOf` over every image of `rows`, in chunks; leaves no tensor behind. */
  score(rows: ImageRows, logitsOf: (images: tf.Tensor2D) => tf.Tensor2D): { accuracy: number; loss: number } {
    return runSteps(this.scoreSteps(rows, logitsOf));
  }

  /** `score` as Steps: it yields to wait for each chunk's values where the backend reads asynchronously (webgpu). */
  *scoreSteps(rows: ImageRows, logitsOf: (images: tf.Tensor2D) => tf.Tensor2D): Steps<{ accuracy: number; loss: number }> {
    const { features, classes } = this.dataset;
    let correct = 0;
    let lossSum = 0;
    for (let start = 0; start < rows.count; start += SCORE_CHUNK) {
      const n = Math.min(SCORE_CHUNK, rows.count - start);
      const logp = tf.tidy(() => tf.logSoftmax(logitsOf(pixelTensor(rows.pixels.subarray(start * features, (start + n) * features), n, features))));
      let values: tf.TypedArray;
      try {
        yield* readStep(logp);
        values = logp.dataSync();
      } finally {
        logp.dispose();
      }
      for (let r = 0; r < n; r++) {
        const row = r * classes;
        let best = 0;
        for (let c = 1; c < classes; c++) if (values[row + c]! > values[row + best]!) best = c;
        const label = rows.labels[start + r]!;
        if (best === label) correct++;
        lossSum -= values[row + label]!;
      }
    }
    return { accuracy: correct / rows.count, loss: lossSum / rows.count };
  }

  /** `testAccuracy` and `testLoss` on the official test images (`layout.metrics`), which no task trains on. */
  testMetrics(logitsOf: (images: tf.Tensor2D) => tf.Tensor2D): TestMetrics | Promise<TestMetrics> {
    return runWhereReadable(this.testMetricsSteps(logitsOf));
  }

  private *testMetricsSteps(logitsOf: (images: tf.Tensor2D) => tf.Tensor2D): Steps<TestMetrics> {
    const { accuracy, loss } = yield* this.scoreSteps(this.layout.metrics, logitsOf);
    return { testAccuracy: accuracy, testLoss: loss };
  }

  /** Mean cross-entropy over every image `split`'s tasks train on: a task's `fullLoss`. */
  fullLoss(split: Split, logitsOf: (images: tf.Tensor2D) => tf.Tensor2D): number | Promise<number> {
    return runWhereReadable(this.fullLossSteps(split, logitsOf));
  }

  private *fullLossSteps(split: Split, logitsOf: (images: tf.Tensor2D) => tf.Tensor2D): Steps<number> {
    return (yield* this.scoreSteps(this.rows(split), logitsOf)).loss;
  }
}

/** The config an image family's `sample` returns: the split is part of the task seed, so splits never share a task. */
export function sampleImageTask(family: string, seed: number, split: Split): TaskConfig {
  if (!isSplit(split)) throw new Error(`split must be "train", "validation" or "test", got ${JSON.stringify(split)}`);
  return { family, split, seed: deriveSeed(seed, family, split) };
}

/** Checks a config an image family's `build` is given (plain JSON, perhaps read from a file): a UserError naming the field. */
export function checkImageTaskConfig(family: string, config: TaskConfig): void {
  if (config.family !== family) throw new UserError(`task config is for family "${config.family}", not "${family}"`);
  if (!isSplit(config.split)) {
    throw new UserError(`${family} task config: split must be "train", "validation" or "test", got ${JSON.stringify(config.split)}`);
  }
  if (typeof config.seed !== 'number' || !Number.isFinite(config.seed)) {
    throw new UserError(`${family} task config: seed must be a number, got ${JSON.stringify(config.seed)}`);
  }
}
