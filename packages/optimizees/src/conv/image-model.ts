/**
 * What conv-net and stn tasks share: a classifier given as parameter specs and a logits function over
 * an image data set seen through the split layout. A family supplies the model; this supplies the Task
 * and TaskFamily plumbing (initialisation, minibatches, loss, metrics, groups, config checks).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { Rng, UserError, type Batch, type NamedTensors, type Split, type Task, type TaskConfig, type TaskFamily } from '@l2l/core';
import { checkImageTaskConfig, type ImageClassificationData, sampleImageTask } from '../image/image-classification';
import { softmaxCrossEntropy } from '../mlp/network';
import { groupsOf, initFromSpecs, type ConvGroup, type ConvInit, type ParamSpec } from './layers';

/** A classifier: its parameters and its logits `[n, classes]` for images `[n, features]` in [0, 1]. */
export interface ImageModel {
  readonly specs: readonly ParamSpec[];
  logits(params: NamedTensors, images: tf.Tensor2D): tf.Tensor2D;
}

export interface ImageModelOptions {
  init: ConvInit;
  initScale: number;
  batchSize: number;
  dataset: string;
  path: string | null;
}

/** One task: a model, a data split and a seed that fixes its minibatch sequence. */
export class ImageModelTask<M extends ImageModel> implements Task {
  constructor(
    readonly config: TaskConfig,
    private readonly options: ImageModelOptions,
    private readonly data: ImageClassificationData,
    readonly architecture: M,
  ) {}

  initParams(seed: number): NamedTensors {
    return initFromSpecs(this.architecture.specs, this.options.init, this.options.initScale, Rng.from(this.config.seed, 'init', seed));
  }

  /** Which group each parameter belongs to: `conv` (conv kernels) or `fc` (the rest). */
  parameterGroups(): Record<string, ConvGroup> {
    return groupsOf(this.architecture.specs);
  }

  /** `images` [batchSize, features] in [0, 1] (HWC) and one-hot `labels` [batchSize, classes], drawn with replacement from this split's images. */
  batch(step: number, seed: number): Batch {
    return this.data.batch(this.config.split, this.options.batchSize, Rng.from(this.config.seed, 'batch', seed, step));
  }

  loss(params: NamedTensors, batch: Batch): tf.Scalar {
    const { images, labels } = batch;
    if (!images || !labels) throw new Error(`${this.config.family} loss needs a batch with images and labels (got: ${Object.keys(batch).join(', ')})`);
    return softmaxCrossEntropy(this.architecture.logits(params, images as tf.Tensor2D), labels as tf.Tensor2D);
  }

  /** Accuracy and mean cross-entropy on the official test images, which no task trains on. */
  metrics(params: NamedTensors): Record<string, number> | Promise<Record<string, number>> {
    return this.data.testMetrics((x) => this.architecture.logits(params, x));
  }

  /** Mean cross-entropy over every image this task's minibatches are drawn from. */
  fullLoss(params: NamedTensors): number | Promise<number> {
    return this.data.fullLoss(this.config.split, (x) => this.architecture.logits(params, x));
  }

  dispose(): void {
    // Holds no tensors: minibatches are made per call and the data set is shared through the family.
  }
}

/** A family of such tasks: loads the data and builds the model once (`load`), on first `build`. */
export class ImageModelFamily<M extends ImageModel> implements TaskFamily {
  private loaded: { data: ImageClassificationData; model: M } | undefined;

  constructor(
    readonly type: string,
    readonly options: ImageModelOptions,
    private readonly load: () => { data: ImageClassificationData; model: M },
  ) {
    if ((options.dataset === 'idx' || options.dataset === 'cifar10') && !options.path) {
      throw new UserError(
        `optimizee "${type}": dataset "${options.dataset}" needs path, a directory holding ` +
          (options.dataset === 'idx' ? 'train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz)' : 'data_batch_1.bin … data_batch_5.bin and test_batch.bin (`l2l data download cifar10`)'),
      );
    }
  }

  /** The data set seen through the split layout, and the model for its image size. */
  prepared(): { data: ImageClassificationData; model: M } {
    this.loaded ??= this.load();
    return this.loaded;
  }

  imageData(): ImageClassificationData {
    return this.prepared().data;
  }

  sample(seed: number, split: Split): TaskConfig {
    return sampleImageTask(this.type, seed, split);
  }

  build(config: TaskConfig): ImageModelTask<M> {
    checkImageTaskConfig(this.type, config);
    const { data, model } = this.prepared();
    return new ImageModelTask(config, this.options, data, model);
  }

  /** Drops this family's reference to the data set (the process-wide cache keeps it for other families). */
  dispose(): void {
    this.loaded = undefined;
  }
}
