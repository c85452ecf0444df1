/**
 * CIFAR-10's official binary version (https://www.cs.toronto.edu/~kriz/cifar.html): five training files
 * `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, each a run of 3,073-byte records: one
 * label byte (0–9), then 3,072 pixel bytes, channel-major (1,024 red, 1,024 green, 1,024 blue, each
 * row-major 32 × 32). Read into an `ImageDataset` whose images are stored height × width × channel
 * (NHWC when reshaped to [n, 32, 32, 3]), the layout tfjs convolutions take.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '@l2l/core';

export const CIFAR10_SIDE = 32;
export const CIFAR10_CHANNELS = 3;
export const CIFAR10_CLASSES = 10;
/** Pixel bytes per image. */
export const CIFAR10_PIXELS = CIFAR10_SIDE * CIFAR10_SIDE * CIFAR10_CHANNELS;
/** Bytes per record: the label byte and the pixels. */
export const CIFAR10_RECORD = 1 + CIFAR10_PIXELS;
export const CIFAR10_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'] as const;
export const CIFAR10_TEST_FILE = 'test_batch.bin';
/** The official archive, its published MD5 and the directory it extracts to. */
export const CIFAR10_ARCHIVE = {
  url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
  dir: 'cifar-10-batches-bin',
} as const;

/** Images of one or more binary files: HWC pixel bytes and labels. */
export interface Cifar10Records {
  /** `count × 3,072` bytes, image i at `[i·3072, (i+1)·3072)`, stored [row][col][channel]. */
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

/** Parses one binary file's bytes; `file` names it in errors. */
export function parseCifar10Batch(bytes: Uint8Array, file: string): Cifar10Records {
  if (bytes.length === 0) throw new UserError(`${file}: empty file; expected CIFAR-10 binary records of ${CIFAR10_RECORD} bytes`);
  if (bytes.length % CIFAR10_RECORD !== 0) {
    throw new UserError(
      `${file}: ${bytes.length} bytes is not a whole number of CIFAR-10 records (${CIFAR10_RECORD} bytes: 1 label + ${CIFAR10_PIXELS} pixels); ` +
        `the file is truncated or not CIFAR-10's binary version (CIFAR-100 records are ${CIFAR10_RECORD + 1} bytes)`,
    );
  }
  const count = bytes.length / CIFAR10_RECORD;
  const pixels = new Uint8Array(count * CIFAR10_PIXELS);
  const labels = new Uint8Array(count);
  const plane = CIFAR10_SIDE * CIFAR10_SIDE;
  for (let i = 0; i < count; i++) {
    const rec = i * CIFAR10_RECORD;
    const label = bytes[rec]!;
    if (label >= CIFAR10_CLASSES) {
      throw new UserError(`${file}: record ${i} (byte ${rec}) has label ${label}; CIFAR-10 labels are 0–9 (is this CIFAR-10's binary version?)`);
    }
    labels[i] = label;
    const out = i * CIFAR10_PIXELS;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < CIFAR10_CHANNELS; c++) pixels[out + p * CIFAR10_CHANNELS + c] = bytes[rec + 1 + c * plane + p]!;
    }
  }
  return { pixels, labels, count };
}

/** Reads one binary file (a UserError naming it when it is missing, unreadable or malformed). */
export function readCifar10Batch(file: string): Cifar10Records {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}; ${CIFAR10_HOW_TO_GET}`, { cause: e });
  }
  return parseCifar10Batch(bytes, file);
}

export const CIFAR10_HOW_TO_GET = `download CIFAR-10 with \`l2l data download cifar10 --dir <dir>\` and set path to <dir>/${CIFAR10_ARCHIVE.dir}`;

/** Reads and concatenates several binary files, in order. */
export function readCifar10Files(files: readonly string[]): Cifar10Records {
  const parts = files.map(readCifar10Batch);
  const count = parts.reduce((n, p) => n + p.count, 0);
  const pixels = new Uint8Array(count * CIFAR10_PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    pixels.set(p.pixels, at * CIFAR10_PIXELS);
    labels.set(p.labels, at);
    at += p.count;
  }
  return { pixels, labels, count };
}

/** The six files of a CIFAR-10 directory: the training files in order, then the test file. */
export function cifar10Files(dir: string): { train: string[]; test: string } {
  return { train: CIFAR10_TRAIN_FILES.map((f) => path.join(dir, f)), test: path.join(dir, CIFAR10_TEST_FILE) };
}

/**
 * Writes records in the official binary layout from HWC pixel bytes (the inverse of the reader): for
 * tests and for bringing other 32 × 32 colour data in this format.
 */
export function encodeCifar10Batch(records: { pixels: ArrayLike<number>; labels: ArrayLike<number> }): Uint8Array {
  const count = records.labels.length;
  if (records.pixels.length !== count * CIFAR10_PIXELS) throw new RangeError(`encodeCifar10Batch: ${records.pixels.length} pixel bytes for ${count} labels; expected ${count * CIFAR10_PIXELS}`);
  const out = new Uint8Array(count * CIFAR10_RECORD);
  const plane = CIFAR10_SIDE * CIFAR10_SIDE;
  for (let i = 0; i < count; i++) {
    const rec = i * CIFAR10_RECORD;
    out[rec] = records.labels[i]!;
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < CIFAR10_CHANNELS; c++) out[rec + 1 + c * plane + p] = records.pixels[i * CIFAR10_PIXELS + p * CIFAR10_CHANNELS + c]!;
    }
  }
  return out;
}

/** Writes a CIFAR-10 directory: the five training files and the test file, from HWC pixel bytes and labels. */
export function writeCifar10Dir(dir: string, data: { train: Array<{ pixels: ArrayLike<number>; labels: ArrayLike<number> }>; test: { pixels: ArrayLike<number>; labels: ArrayLike<number> } }): void {
  if (data.train.length !== CIFAR10_TRAIN_FILES.length) throw new RangeError(`writeCifar10Dir: expected ${CIFAR10_TRAIN_FILES.length} training files, got ${data.train.length}`);
  fs.mkdirSync(dir, { recursive: true });
  const files = cifar10Files(dir);
  data.train.forEach((records, i) => fs.writeFileSync(files.train[i]!, encodeCifar10Batch(records)));
  fs.writeFileSync(files.test, encodeCifar10Batch(data.test));
}
