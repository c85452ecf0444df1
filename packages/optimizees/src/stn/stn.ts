/**
 * `stn`: image classification with a spatial transformer in front (Jaderberg et al. 2015), on
 * affine-distorted digits. A localisation net (conv blocks, a dense layer of `locHidden` tanh units,
 * then a dense layer of 6 outputs that starts at zero kernel and identity bias, so training starts from
 * the identity transform) predicts θ; a grid generator and a bilinear sampler warp the image with it;
 * a small conv net classifies the result.
 *
 * Data: the images of `dataset` (MNIST by default, or Fashion-MNIST, or any IDX data set) rotated,
 * scaled and placed on a larger canvas as in the STN paper's RTS setting (±45°, 0.7–1.2, 42 × 42),
 * generated deterministically when the family first loads them.
 *
 * Parameter groups: `conv` (the conv kernels of both nets) and `fc` (everything else).
 */
import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, validateWithSchema, UserError, type JsonSchema, type NamedTensors } from '@l2l/core';
import { KNOWN_IMAGE_SHAPES, loadImageDataset, type ImageDatasetName } from '../data/datasets';
import { IMAGE_SPLIT_SCHEMA_PROPERTIES, ImageClassificationData, imageSplitLayout, type ImageSplitOptions } from '../image/image-classification';
import { ImageModelFamily, ImageModelTask, type ImageModel, type ImageModelOptions } from '../conv/image-model';
import { IMAGE_DATASET_SCHEMA_PROPERTIES } from '../conv/conv-net';
import {
  CONV_ACTIVATIONS,
  CONV_INITS,
  CONV_PADDINGS,
  convClassifier,
  convClassifierLogits,
  convStack,
  convStackActivations,
  denseStackActivations,
  specsSize,
  convStackOutput,
  convStackSpecs,
  denseStack,
  denseStackSpecs,
  POOLINGS,
  type ConvClassifier,
  type ConvClassifierOptions,
  type ConvStack,
  type DenseStack,
  type ParamSpec,
} from '../conv/layers';
import { distortDataset, RTS_DISTORTION } from './affine-distortion';
import { bilinearSample, IDENTITY_THETA } from './bilinear-sampler';

export const STN_TYPE = 'stn';

export interface StnOptions extends ImageSplitOptions, ConvClassifierOptions, ImageModelOptions {
  dataset: ImageDatasetName;
  canvas: number;
  maxRotation: number;
  minScale: number;
  maxScale: number;
  distortionSeed: number;
  outputSize: number | null;
  locLayers: number;
  locChannels: number;
  locKernelSize: number;
  locHidden: number;
}

export const stnSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...IMAGE_DATASET_SCHEMA_PROPERTIES,
    canvas: { type: 'integer', minimum: 2, default: RTS_DISTORTION.canvas, description: 'Side of the square canvas the distorted images are drawn on (STN paper, RTS: 42).' },
    maxRotation: { type: 'number', minimum: 0, maximum: 180, default: RTS_DISTORTION.maxRotation, description: 'Rotations are uniform in ±maxRotation degrees (RTS: 45).' },
    minScale: { type: 'number', exclusiveMinimum: 0, default: RTS_DISTORTION.minScale, description: 'Scales are uniform in [minScale, maxScale] (RTS: 0.7–1.2).' },
    maxScale: { type: 'number', exclusiveMinimum: 0, default: RTS_DISTORTION.maxScale, description: 'See minScale.' },
    distortionSeed: { type: 'integer', default: RTS_DISTORTION.seed, description: 'Seed of the per-image transforms (the same seed gives the same data set everywhere).' },
    outputSize: { type: ['integer', 'null'], minimum: 2, default: null, description: 'Side of the sampler\'s output grid, which the classifier sees (null: the canvas size).' },
    locLayers: { type: 'integer', minimum: 1, default: 2, description: 'Conv blocks of the localisation net (5×5 conv → ReLU → 2×2 max pool).' },
    locChannels: { type: 'integer', minimum: 1, default: 20, description: 'Channels of every localisation conv layer (STN paper: 20).' },
    locKernelSize: { type: 'integer', minimum: 1, default: 5, description: 'Kernel side of the localisation conv layers.' },
    locHidden: { type: 'integer', minimum: 1, default: 20, description: 'Tanh units of the localisation net\'s dense layer, before the 6 outputs θ.' },
    layers: { type: 'integer', minimum: 1, default: 2, description: 'Conv blocks of the classifier.' },
    channels: { type: 'integer', minimum: 1, default: 16, description: 'Channels of every classifier conv layer.' },
    kernelSize: { type: 'integer', minimum: 1, default: 5, description: 'Kernel side of the classifier conv layers, stride 1.' },
    padding: { enum: [...CONV_PADDINGS], default: 'same', description: 'Padding of the conv layers of both nets.' },
    pooling: { enum: [...POOLINGS], default: 'max', description: 'Pooling after each classifier conv block (2×2, stride 2, SAME).' },
    batchNorm: { type: 'boolean', default: false, description: 'Batch norm (batch statistics) after classifier conv and hidden dense layers.' },
    activation: { enum: [...CONV_ACTIVATIONS], default: 'relu', description: 'Activation of the classifier.' },
    dense: { type: 'array', items: { type: 'integer', minimum: 1 }, default: [], description: 'Hidden dense layers of the classifier before its logits.' },
    init: {
      enum: [...CONV_INITS],
      default: 'he-normal',
      description: 'Initialisation of both nets (see conv-net), except θ\'s layer: zero kernel and identity bias.',
    },
    initScale: { type: 'number', exclusiveMinimum: 0, default: 0.01, description: 'Standard deviation of the "normal" initialisation.' },
    batchSize: { type: 'integer', minimum: 1, default: 128, description: 'Images per minibatch, drawn uniformly with replacement.' },
    ...IMAGE_SPLIT_SCHEMA_PROPERTIES,
  },
};

export interface StnArchitecture extends ImageModel, ConvClassifier {
  readonly canvas: number;
  readonly channels: number;
  readonly outputSize: number;
  readonly locConv: ConvStack;
  readonly locDense: DenseStack;
}

export function stnArchitecture(o: StnOptions, channels: number, classes: number, component = `optimizee "${STN_TYPE}"`): StnArchitecture {
  const outputSize = o.outputSize ?? o.canvas;
  const locConv: ConvStack = { prefix: 'loc/conv', channels: Array(o.locLayers).fill(o.locChannels), kernelSize: o.locKernelSize, padding: o.padding, pooling: 'max', batchNorm: false, activation: 'relu' };
  const locDense: DenseStack = { prefix: 'loc/dense', hidden: [o.locHidden], outputs: 6, batchNorm: false, activation: 'tanh' };
  const classifier = convClassifier(o, { rows: outputSize, cols: outputSize, channels }, classes, component);
  const [lr, lc] = convStackOutput(locConv, o.canvas, o.canvas, `${component} (localisation net)`);
  // θ's layer starts at the identity transform: zero kernel, bias [1, 0, 0, 0, 1, 0].
  const loc = denseStackSpecs(locDense, lr * lc * o.locChannels).map((s): ParamSpec =>
    s.name === 'loc/denseout/kernel' ? { ...s, init: { kind: 'zeros' } } : s.name === 'loc/denseout/bias' ? { ...s, init: { kind: 'constant', values: IDENTITY_THETA } } : s,
  );
  const specs = [...convStackSpecs(locConv, channels), ...loc, ...classifier.specs];
  const arch = { canvas: o.canvas, channels, outputSize, locConv, locDense, conv: classifier.conv, dense: classifier.dense, specs };
  return { ...arch, logits: (params, images) => stnLogits(params, arch, images) };
}

/** θ `[n, 6]` the localisation net predicts for NHWC canvas images. */
export function stnTheta(params: NamedTensors, arch: Pick<StnArchitecture, 'locConv' | 'locDense'>, x: tf.Tensor4D): tf.Tensor2D {
  const h = convStack(params, arch.locConv, x);
  return denseStack(params, arch.locDense, tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D);
}

/** Logits of images `[n, canvas·canvas·channels]` (HWC, values in [0, 1]). */
export function stnLogits(params: NamedTensors, arch: Omit<StnArchitecture, 'logits'>, images: tf.Tensor2D): tf.Tensor2D {
  const x = tf.reshape(images, [images.shape[0], arch.canvas, arch.canvas, arch.channels]) as tf.Tensor4D;
  return convClassifierLogits(params, arch, bilinearSample(x, stnTheta(params, arch, x), arch.outputSize, arch.outputSize));
}

export type StnTask = ImageModelTask<StnArchitecture>;
export type StnFamily = ImageModelFamily<StnArchitecture>;

function stnFamily(o: StnOptions, baseDir: string): StnFamily {
  const component = `optimizee "${STN_TYPE}"`;
  if (o.minScale > o.maxScale) throw new UserError(`${component}: minScale ${o.minScale} is larger than maxScale ${o.maxScale}`);
  return new ImageModelFamily(STN_TYPE, o, () => {
    const base = loadImageDataset({ dataset: o.dataset, path: o.path, baseDir });
    // Only the rows some split or the test metrics read are distorted (with trainExamples / testExamples set, far fewer than all).
    const layout = imageSplitLayout(base, o, component);
    const span = (r: { start: number; end: number }) => [r.start, r.end] as const;
    const distorted = distortDataset(
      base,
      { canvas: o.canvas, maxRotation: o.maxRotation, minScale: o.minScale, maxScale: o.maxScale, seed: o.distortionSeed },
      { train: [span(layout.train), span(layout.validation), span(layout.test)], test: [span(layout.metrics)] },
    );
    return { data: new ImageClassificationData(distorted, o, component), model: stnArchitecture(o, distorted.channels, distorted.classes, component) };
  });
}

export const stn = defineComponent<StnOptions>()({
  kind: 'optimizee',
  type: STN_TYPE,
  description:
    'Classify affine-distorted MNIST (or Fashion-MNIST / IDX) digits, rotated ±45°, scaled 0.7–1.2 on a 42×42 canvas, with a spatial transformer (localisation net, grid generator, bilinear sampler; Jaderberg et al. 2015) in front of a small conv net',
  schema: stnSchema,
  create: (options, ctx) => stnFamily(options, ctx.baseDir),
  estimate: (o) => {
    const shape = KNOWN_IMAGE_SHAPES[o.dataset];
    if (!shape) return {};
    const arch = stnArchitecture(o, shape.channels, shape.classes);
    const canvas = o.canvas * o.canvas * shape.channels;
    const warped = arch.outputSize * arch.outputSize * shape.channels;
    return {
      coordinates: specsSize(arch.specs),
      // The source pixels and the distorted canvases (allocated for every image, one byte each).
      bytes: (shape.train + shape.test) * (shape.rows * shape.cols * shape.channels + canvas),
      // A taped step: the canvases, the localisation net, the sampler (at least 40 tensors of a value per output
      // point: coordinates, floors, four neighbours' masks, indices, values and weights), the classifier.
      stepBytes:
        4 *
        o.batchSize *
        (canvas + convStackActivations(arch.locConv, o.canvas, o.canvas) + denseStackActivations(arch.locDense) + 40 * warped + convStackActivations(arch.conv, arch.outputSize, arch.outputSize) + denseStackActivations(arch.dense)),
    };
  },
});

export function createStnFamily(options: Partial<StnOptions> = {}, baseDir: string = process.cwd()): StnFamily {
  return stnFamily(validateWithSchema<StnOptions>(stnSchema, options, `optimizee "${STN_TYPE}"`), baseDir);
}
