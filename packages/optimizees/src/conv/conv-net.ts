/**
 * `conv-net`: image classification with a convolutional network. Its defaults are the CIFAR-10 network of
 * Andrychowicz et al. (2016, §3.3) as DeepMind's code builds it (problems.py, `cifar10`): three blocks of
 * [5×5 conv, 16 channels, stride 1, SAME] → batch norm → ReLU → 2×2 max pool of stride 2, then a dense layer
 * of 32 units with batch norm and ReLU, and 10 logits; every weight and bias from N(0, 0.01²), pixels scaled
 * by 1/255, minibatches of 128, mean softmax cross-entropy. With `"dataset": "cifar10"` and `path` it is that
 * problem; on MNIST-sized data the same network sees 28×28×1 images.
 *
 * Differences from DeepMind's network, on purpose: a conv layer followed by batch norm has no bias (batch
 * norm subtracts it again, so its gradient is exactly zero); batch norm always uses the statistics of the
 * images it is given (training mode, as in DeepMind's code), also when `metrics` scores the test set in
 * chunks of 1,000 images.
 *
 * Parameters come in two groups, as DeepMind's `cifar-multi` assigns them: `conv` (the conv kernels) and
 * `fc` (everything else).
 */
import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, validateWithSchema, type JsonSchema, type NamedTensors } from '@l2l/core';
import { ALL_IMAGE_DATASETS, KNOWN_IMAGE_SHAPES, loadImageDataset, type ImageDataset, type ImageDatasetName } from '../data/datasets';
import { IMAGE_SPLIT_SCHEMA_PROPERTIES, ImageClassificationData, type ImageSplitOptions } from '../image/image-classification';
import { ImageModelFamily, ImageModelTask, type ImageModel, type ImageModelOptions } from './image-model';
import {
  CONV_ACTIVATIONS,
  CONV_INITS,
  CONV_PADDINGS,
  convClassifier,
  convClassifierLogits,
  convStackActivations,
  denseStackActivations,
  POOLINGS,
  specsSize,
  type ConvClassifier,
  type ConvClassifierOptions,
} from './layers';

export const CONV_NET_TYPE = 'conv-net';

export interface ConvNetOptions extends ImageSplitOptions, ConvClassifierOptions, ImageModelOptions {
  dataset: ImageDatasetName;
}

/** Schema properties of the data set options every image family with a `path` shares. */
export const IMAGE_DATASET_SCHEMA_PROPERTIES: Record<'dataset' | 'path', JsonSchema> = {
  dataset: {
    enum: [...ALL_IMAGE_DATASETS],
    default: 'mnist',
    description:
      'Data set: "mnist" (bundled), "fashion-mnist" (apt-get install dataset-fashion-mnist, or path), "idx" (any IDX data set in path) ' +
      'or "cifar10" (CIFAR-10\'s binary version in path; get it with `l2l data download cifar10`).',
  },
  path: {
    type: ['string', 'null'],
    minLength: 1,
    default: null,
    description:
      'Directory of the data set, relative to the config file: for IDX data train-images-idx3-ubyte, train-labels-idx1-ubyte, ' +
      't10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz); for "cifar10" data_batch_1.bin … data_batch_5.bin and ' +
      'test_batch.bin (cifar-10-batches-bin). Required for "idx" and "cifar10"; overrides the default directory otherwise.',
  },
};

export const convNetSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    layers: { type: 'integer', minimum: 1, default: 3, description: 'Conv blocks (conv → [batch norm] → activation → [pool]); DeepMind\'s CIFAR net: 3.' },
    channels: { type: 'integer', minimum: 1, default: 16, description: 'Output channels of every conv layer (DeepMind: 16).' },
    kernelSize: { type: 'integer', minimum: 1, default: 5, description: 'Side of the square conv kernels, stride 1 (DeepMind: 5).' },
    padding: { enum: [...CONV_PADDINGS], default: 'same', description: 'Conv padding: "same" keeps the image size (DeepMind), "valid" shrinks it by kernelSize − 1.' },
    pooling: { enum: [...POOLINGS], default: 'max', description: 'Pooling after each conv block: 2×2 of stride 2, SAME padding ("max": DeepMind), or "none".' },
    batchNorm: {
      type: 'boolean',
      default: true,
      description: 'Batch norm (offset, no scale; batch statistics) after every conv and hidden dense layer; a conv with batch norm has no bias.',
    },
    activation: { enum: [...CONV_ACTIVATIONS], default: 'relu', description: 'Activation of conv blocks and hidden dense layers.' },
    dense: {
      type: 'array',
      items: { type: 'integer', minimum: 1 },
      default: [32],
      description: 'Hidden dense layers after the conv blocks, input side first (DeepMind: [32]); the output layer (one logit per class) follows.',
    },
    init: {
      enum: [...CONV_INITS],
      default: 'normal',
      description:
        '"normal": every weight and bias ~ N(0, initScale²) (DeepMind: 0.01); "he-normal" / "glorot-uniform": kernels by fan-in/out, biases 0. Batch-norm offsets start at 0.',
    },
    initScale: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Standard deviation of the "normal" initialisation.' },
    batchSize: { type: 'integer', minimum: 1, default: 128, description: 'Images per minibatch, drawn uniformly with replacement (DeepMind: 128).' },
    ...IMAGE_DATASET_SCHEMA_PROPERTIES,
    ...IMAGE_SPLIT_SCHEMA_PROPERTIES,
  },
};

/** The network for a data set's image size: its conv and dense stacks and parameter specs. */
export interface ConvNetArchitecture extends ImageModel, ConvClassifier {
  readonly rows: number;
  readonly cols: number;
  readonly channels: number;
}

export function convNetArchitecture(options: ConvNetOptions, data: Pick<ImageDataset, 'rows' | 'cols' | 'channels' | 'classes'>, component = `optimizee "${CONV_NET_TYPE}"`): ConvNetArchitecture {
  const arch = { rows: data.rows, cols: data.cols, channels: data.channels, ...convClassifier(options, data, data.classes, component) };
  return { ...arch, logits: (params, images) => convNetLogits(params, arch, images) };
}

/** Logits `[n, classes]` of images `[n, rows·cols·channels]` (HWC order, values in [0, 1]). */
export function convNetLogits(params: NamedTensors, arch: Omit<ConvNetArchitecture, 'logits'>, images: tf.Tensor2D): tf.Tensor2D {
  return convClassifierLogits(params, arch, tf.reshape(images, [images.shape[0], arch.rows, arch.cols, arch.channels]) as tf.Tensor4D);
}

export type ConvNetTask = ImageModelTask<ConvNetArchitecture>;
export type ConvNetFamily = ImageModelFamily<ConvNetArchitecture>;

function convNetFamily(options: ConvNetOptions, baseDir: string): ConvNetFamily {
  return new ImageModelFamily(CONV_NET_TYPE, options, () => {
    const component = `optimizee "${CONV_NET_TYPE}"`;
    const data = new ImageClassificationData(loadImageDataset({ dataset: options.dataset, path: options.path, baseDir }), options, component);
    return { data, model: convNetArchitecture(options, data.dataset, component) };
  });
}

export const convNet = defineComponent<ConvNetOptions>()({
  kind: 'optimizee',
  type: CONV_NET_TYPE,
  description:
    'Classify images with a convolutional network; defaults: DeepMind\'s CIFAR-10 net (3 × [5×5 conv 16, batch norm, ReLU, 2×2 max pool], dense 32 + batch norm, batch 128; Andrychowicz et al. 2016), on MNIST unless dataset says otherwise',
  schema: convNetSchema,
  create: (options, ctx) => convNetFamily(options, ctx.baseDir),
  estimate: (o) => {
    // An IDX data set's image size is known only once read.
    const shape = KNOWN_IMAGE_SHAPES[o.dataset];
    if (!shape) return {};
    const arch = convNetArchitecture(o, shape);
    const input = shape.rows * shape.cols * shape.channels;
    return {
      coordinates: specsSize(arch.specs),
      // The data set's pixels, one byte each.
      bytes: (shape.train + shape.test) * input,
      // A taped step: the minibatch and every layer's output.
      stepBytes: 4 * o.batchSize * (input + convStackActivations(arch.conv, shape.rows, shape.cols) + denseStackActivations(arch.dense)),
    };
  },
});

/** A family from partial options (validated, defaults applied), without a registry: for scripts and tests. */
export function createConvNetFamily(options: Partial<ConvNetOptions> = {}, baseDir: string = process.cwd()): ConvNetFamily {
  return convNetFamily(validateWithSchema<ConvNetOptions>(convNetSchema, options, `optimizee "${CONV_NET_TYPE}"`), baseDir);
}
