/**
 * `mnist-mlp`: image classification with a fully connected network, the MNIST optimizee of Andrychowicz
 * et al. (2016, §3.3): one hidden layer of 20 sigmoid units, minibatches of 128, mean softmax
 * cross-entropy. Each split's tasks train on their own rows of the training file and `metrics` scores the
 * official test images, which no task trains on (layout: ../image/image-classification.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, validateWithSchema, Rng, UserError, type Batch, type JsonSchema, type NamedTensors, type Split, type Task, type TaskConfig, type TaskFamily } from '@l2l/core';
import { IMAGE_DATASETS, loadImageDataset, type ImageDataset, type ImageDatasetName } from '../data/datasets';
import { checkImageTaskConfig, IMAGE_SPLIT_SCHEMA_PROPERTIES, ImageClassificationData, sampleImageTask, type ImageSplitOptions } from '../image/image-classification';
import { initMlpParams, mlpLayers, mlpLogits, MLP_ACTIVATIONS, MLP_INITS, softmaxCrossEntropy, type MlpActivation, type MlpInit, type MlpLayerShape } from './network';

export const MNIST_MLP_TYPE = 'mnist-mlp';

export interface MnistMlpOptions extends ImageSplitOptions {
  hidden: number[];
  activation: MlpActivation;
  batchSize: number;
  init: MlpInit;
  initScale: number;
  dataset: ImageDatasetName;
  path: string | null;
}

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
    ...IMAGE_SPLIT_SCHEMA_PROPERTIES,
  },
};

/** One MLP optimizee: a network shape, a data split and a seed that fixes its minibatch sequence. */
export class MnistMlpTask implements Task {
  readonly layers: readonly MlpLayerShape[];

  constructor(
    readonly config: TaskConfig,
    private readonly options: MnistMlpOptions,
    private readonly data: ImageClassificationData,
  ) {
    this.layers = mlpLayers(data.dataset.features, options.hidden, data.dataset.classes);
  }

  initParams(seed: number): NamedTensors {
    return initMlpParams(this.layers, this.options.init, this.options.initScale, Rng.from(this.config.seed, 'init', seed));
  }

  /** `images` [batchSize, features] in [0, 1] and one-hot `labels` [batchSize, classes], drawn with replacement from this split's images. */
  batch(step: number, seed: number): Batch {
    return this.data.batch(this.config.split, this.options.batchSize, Rng.from(this.config.seed, 'batch', seed, step));
  }

  loss(params: NamedTensors, batch: Batch): tf.Scalar {
    const { images, labels } = batch;
    if (!images || !labels) throw new Error(`${MNIST_MLP_TYPE} loss needs a batch with images and labels (got: ${Object.keys(batch).join(', ')})`);
    return softmaxCrossEntropy(this.logits(params, images as tf.Tensor2D), labels as tf.Tensor2D);
  }

  /** Accuracy and mean cross-entropy on the official test images (all of them, or the first `testExamples`), which no task trains on. */
  metrics(params: NamedTensors): Record<string, number> | Promise<Record<string, number>> {
    return this.data.testMetrics((x) => this.logits(params, x));
  }

  /** Mean cross-entropy over every image this task's minibatches are drawn from. */
  fullLoss(params: NamedTensors): number | Promise<number> {
    return this.data.fullLoss(this.config.split, (x) => this.logits(params, x));
  }

  private logits(params: NamedTensors, images: tf.Tensor2D): tf.Tensor2D {
    return mlpLogits(params, images, this.layers.length, this.options.activation) as tf.Tensor2D;
  }

  dispose(): void {
    // Holds no tensors: minibatches are made per call and the data set is shared through the family.
  }
}

/** The family: loads its data set on first `build` and shares it among its tasks. */
export class MnistMlpFamily implements TaskFamily {
  readonly type = MNIST_MLP_TYPE;
  private data: ImageClassificationData | undefined;

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
    return this.imageData().dataset;
  }

  /** The data set seen through the split layout (checked against the options on first use). */
  imageData(): ImageClassificationData {
    this.data ??= new ImageClassificationData(
      loadImageDataset({ dataset: this.options.dataset, path: this.options.path, baseDir: this.baseDir }),
      this.options,
      `optimizee "${MNIST_MLP_TYPE}"`,
    );
    return this.data;
  }

  sample(seed: number, split: Split): TaskConfig {
    return sampleImageTask(MNIST_MLP_TYPE, seed, split);
  }

  build(config: TaskConfig): MnistMlpTask {
    checkImageTaskConfig(MNIST_MLP_TYPE, config);
    return new MnistMlpTask(config, this.options, this.imageData());
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
