/**
 * `mnist-mlp`: image classification with a fully connected network, the MNIST optimizee of Andrychowicz
 * et al. (2016, §3.3): one hidden layer of 20 sigmoid units, minibatches of 128, mean softmax
 * cross-entropy. Train-split tasks draw minibatches from the training images, test-split tasks from the
 * held-out test images; `metrics` always scores the held-out test images.
 */
import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, deriveSeed, validateWithSchema, Rng, UserError, type Batch, type JsonSchema, type NamedTensors, type Split, type Task, type TaskConfig, type TaskFamily } from '@l2l/core';
import { IMAGE_DATASETS, loadImageDataset, scalePixels, type ImageDataset, type ImageDatasetName } from '../data/datasets';
import { initMlpParams, mlpLayers, mlpLogits, MLP_ACTIVATIONS, MLP_INITS, softmaxCrossEntropy, type MlpActivation, type MlpInit, type MlpLayerShape } from './network';

export const MNIST_MLP_TYPE = 'mnist-mlp';

export interface MnistMlpOptions {
  hidden: number[];
  activation: MlpActivation;
  batchSize: number;
  init: MlpInit;
  initScale: number;
  dataset: ImageDatasetName;
  path: string | null;
  trainExamples: number | null;
  testExamples: number | null;
}

/** Images per forward pass when `metrics` scores the test set (bounds memory, not results). */
const METRICS_CHUNK = 1000;

export const mnistMlpSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    hidden: {
      type: 'array',
      items: { type: 'integer', minimum: 1 },
      default: [20],
      description: 'Sizes of the hidden layers, input side first; [] is logistic regression (the paper: [20]).',
    },
    activation: {
      enum: [...MLP_ACTIVATIONS],
      default: 'sigmoid',
      description: 'Activation of the hidden layers; the output layer is linear (logits).',
    },
    batchSize: { type: 'integer', minimum: 1, default: 128, description: 'Images per minibatch, drawn uniformly with replacement.' },
    init: {
      enum: [...MLP_INITS],
      default: 'normal',
      description:
        'Parameter initialisation: "normal" draws every weight and bias from N(0, initScale²) as the paper\'s code does ' +
        '(0.01), so learned optimizers see the same starting points; "glorot-uniform" and "he-normal" scale kernels by ' +
        'fan-in/out and zero the biases.',
    },
    initScale: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Standard deviation of the "normal" initialisation (unused by the others).' },
    dataset: {
      enum: [...IMAGE_DATASETS],
      default: 'mnist',
      description: 'Data set: "mnist" (bundled), "fashion-mnist" (apt-get install dataset-fashion-mnist, or path) or "idx" (any IDX data set in path).',
    },
    path: {
      type: ['string', 'null'],
      minLength: 1,
      default: null,
      description:
        'Directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte ' +
        '(each may end in .gz); relative to the config file. Required for "idx"; overrides the default directory otherwise.',
    },
    trainExamples: {
      type: ['integer', 'null'],
      minimum: 1,
      default: null,
      description: 'Use only the first this many training images (null: all).',
    },
    testExamples: {
      type: ['integer', 'null'],
      minimum: 1,
      default: null,
      description: 'Use only the first this many test images, for test-split minibatches and metrics (null: all).',
    },
  },
};

/** Rows `[0, count)` of a split, as the task sees them. */
interface SplitView {
  /** Pixel bytes (0–255). */
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

function view(data: ImageDataset, split: Split, limit: number | null, option: string): SplitView {
  const s = data[split];
  if (limit !== null && limit > s.count) {
    throw new UserError(`optimizee "${MNIST_MLP_TYPE}": ${option} is ${limit} but ${s.files.images} holds only ${s.count} images`);
  }
  const count = limit ?? s.count;
  return { pixels: s.pixels.subarray(0, count * data.features), labels: s.labels.subarray(0, count), count };
}

/** One MLP optimizee: a network shape, a data split and a seed that fixes its minibatch sequence. */
export class MnistMlpTask implements Task {
  readonly layers: readonly MlpLayerShape[];
  private readonly data: SplitView;
  private readonly held: SplitView;

  constructor(
    readonly config: TaskConfig,
    private readonly options: MnistMlpOptions,
    private readonly dataset: ImageDataset,
  ) {
    this.layers = mlpLayers(dataset.features, options.hidden, dataset.classes);
    this.held = view(dataset, 'test', options.testExamples, 'testExamples');
    this.data = config.split === 'train' ? view(dataset, 'train', options.trainExamples, 'trainExamples') : this.held;
  }

  initParams(seed: number): NamedTensors {
    return initMlpParams(this.layers, this.options.init, this.options.initScale, Rng.from(this.config.seed, 'init', seed));
  }

  /** `images` [batchSize, features] in [0, 1] and one-hot `labels` [batchSize, classes], drawn with replacement. */
  batch(step: number, seed: number): Batch {
    const { features, classes } = this.dataset;
    const n = this.options.batchSize;
    const rng = Rng.from(this.config.seed, 'batch', seed, step);
    const images = new Float32Array(n * features);
    const labels = new Float32Array(n * classes);
    for (let r = 0; r < n; r++) {
      const i = rng.int(this.data.count);
      scalePixels(this.data.pixels.subarray(i * features, (i + 1) * features), images, r * features);
      labels[r * classes + this.data.labels[i]!] = 1;
    }
    return { images: tf.tensor2d(images, [n, features]), labels: tf.tensor2d(labels, [n, classes]) };
  }

  loss(params: NamedTensors, batch: Batch): tf.Scalar {
    const { images, labels } = batch;
    if (!images || !labels) throw new Error(`${MNIST_MLP_TYPE} loss needs a batch with images and labels (got: ${Object.keys(batch).join(', ')})`);
    return softmaxCrossEntropy(mlpLogits(params, images, this.layers.length, this.options.activation), labels as tf.Tensor2D);
  }

  /** Accuracy and mean cross-entropy on the held-out test images (all of them, or the first `testExamples`). */
  metrics(params: NamedTensors): Record<string, number> {
    const { features, classes } = this.dataset;
    const { pixels, labels, count } = this.held;
    let correct = 0;
    let lossSum = 0;
    for (let start = 0; start < count; start += METRICS_CHUNK) {
      const n = Math.min(METRICS_CHUNK, count - start);
      const logp = tf.tidy(() => {
        const x = tf.tensor2d(scalePixels(pixels.subarray(start * features, (start + n) * features)), [n, features]);
        return tf.logSoftmax(mlpLogits(params, x, this.layers.length, this.options.activation));
      });
      const values = logp.dataSync();
      logp.dispose();
      for (let r = 0; r < n; r++) {
        const row = r * classes;
        let best = 0;
        for (let c = 1; c < classes; c++) if (values[row + c]! > values[row + best]!) best = c;
        const label = labels[start + r]!;
        if (best === label) correct++;
        lossSum -= values[row + label]!;
      }
    }
    return { testAccuracy: correct / count, testLoss: lossSum / count };
  }

  dispose(): void {
    // Holds no tensors: minibatches are made per call and the data set is shared through the family.
  }
}

/** The family: loads its data set on first `build` and shares it among its tasks. */
export class MnistMlpFamily implements TaskFamily {
  readonly type = MNIST_MLP_TYPE;
  private data: ImageDataset | undefined;

  constructor(
    readonly options: MnistMlpOptions,
    private readonly baseDir: string = process.cwd(),
  ) {
    if (options.dataset === 'idx' && !options.path) {
      throw new UserError(
        `optimizee "${MNIST_MLP_TYPE}": dataset "idx" needs path, a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, ` +
          't10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz)',
      );
    }
  }

  /** The data set, loaded on first use (once per directory per process). */
  dataset(): ImageDataset {
    this.data ??= loadImageDataset({ dataset: this.options.dataset, path: this.options.path, baseDir: this.baseDir });
    return this.data;
  }

  sample(seed: number, split: Split): TaskConfig {
    if (split !== 'train' && split !== 'test') throw new Error(`split must be "train" or "test", got ${JSON.stringify(split)}`);
    return { family: MNIST_MLP_TYPE, split, seed: deriveSeed(seed, MNIST_MLP_TYPE, split) };
  }

  build(config: TaskConfig): MnistMlpTask {
    if (config.family !== MNIST_MLP_TYPE) throw new UserError(`task config is for family "${config.family}", not "${MNIST_MLP_TYPE}"`);
    if (config.split !== 'train' && config.split !== 'test') {
      throw new UserError(`${MNIST_MLP_TYPE} task config: split must be "train" or "test", got ${JSON.stringify(config.split)}`);
    }
    if (typeof config.seed !== 'number' || !Number.isFinite(config.seed)) {
      throw new UserError(`${MNIST_MLP_TYPE} task config: seed must be a number, got ${JSON.stringify(config.seed)}`);
    }
    return new MnistMlpTask(config, this.options, this.dataset());
  }

  /** Drops this family's reference to the data set (the process-wide cache keeps it for other families). */
  dispose(): void {
    this.data = undefined;
  }
}

export const mnistMlp = defineComponent<MnistMlpOptions>()({
  kind: 'optimizee',
  type: MNIST_MLP_TYPE,
  description: 'Classify MNIST (or Fashion-MNIST, or any IDX image data set) with a fully connected network; default 784-20-10 sigmoid, batch 128 (Andrychowicz et al. 2016)',
  schema: mnistMlpSchema,
  create: (options, ctx) => new MnistMlpFamily(options, ctx.baseDir),
  estimate: (o) => {
    // 28 × 28 inputs for the bundled data sets; an IDX data set's size is known only once read (1 as a bound).
    const sizes = [o.dataset === 'idx' ? 1 : 784, ...o.hidden, 10];
    const coordinates = sizes.slice(1).reduce((n, out, i) => n + (sizes[i]! + 1) * out, 0);
    // A taped step: a minibatch through every layer, pre- and post-activation.
    return { coordinates, stepBytes: 4 * o.batchSize * sizes.reduce((a, b) => a + 2 * b, 0) };
  },
});

/** A family from partial options (validated, defaults applied), without a registry: for scripts and tests. */
export function createMnistMlpFamily(options: Partial<MnistMlpOptions> = {}, baseDir: string = process.cwd()): MnistMlpFamily {
  return new MnistMlpFamily(validateWithSchema<MnistMlpOptions>(mnistMlpSchema, options, `optimizee "${MNIST_MLP_TYPE}"`), baseDir);
}
