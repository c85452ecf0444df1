/**
 * Affine-distorted image data sets, generated deterministically from another data set: the "RTS" setting
 * of Jaderberg et al. (2015, §4.1), where each digit is rotated by up to ±45°, scaled by 0.7–1.2 and placed
 * at a random position of a 42 × 42 canvas. Every image of both files gets its own transform, drawn from
 * `Rng.from(seed, 'rts', file, index)`, so the same options give the same images on every machine.
 */
import { Rng } from '@l2l/core';
import type { ImageDataset, ImageSplit } from '../data/datasets';

export interface AffineDistortion {
  /** Side of the square output canvas in pixels. */
  readonly canvas: number;
  /** Largest rotation either way, in degrees. */
  readonly maxRotation: number;
  readonly minScale: number;
  readonly maxScale: number;
  /** Seed of the transforms. */
  readonly seed: number;
}

/** The STN paper's RTS setting. */
export const RTS_DISTORTION: AffineDistortion = { canvas: 42, maxRotation: 45, minScale: 0.7, maxScale: 1.2, seed: 0 };

/** One image's transform: rotation (radians), scale, and the offset of its centre from the canvas centre (pixels). */
export interface ImageTransform {
  readonly angle: number;
  readonly scale: number;
  readonly dx: number;
  readonly dy: number;
}

/** The transform of image `index` of `file`: a uniform rotation and scale, then a uniform position that keeps the scaled image's box on the canvas. */
export function imageTransform(d: AffineDistortion, rows: number, cols: number, file: 'train' | 'test', index: number): ImageTransform {
  const rng = Rng.from(d.seed, 'rts', file, index);
  const angle = (rng.uniform(-d.maxRotation, d.maxRotation) * Math.PI) / 180;
  const scale = rng.uniform(d.minScale, d.maxScale);
  const room = (side: number) => Math.max(0, (d.canvas - side * scale) / 2);
  return { angle, scale, dx: rng.uniform(-room(cols), room(cols)), dy: rng.uniform(-room(rows), room(rows)) };
}

/**
 * Draws one source image (`rows × cols × channels` bytes, HWC) onto a `canvas × canvas` image with `t`:
 * each canvas pixel is mapped back through the inverse transform and sampled bilinearly (zeros outside).
 */
export function warpImage(src: Uint8Array, rows: number, cols: number, channels: number, canvas: number, t: ImageTransform, out: Uint8Array, offset = 0): void {
  const [cos, sin] = [Math.cos(t.angle), Math.sin(t.angle)];
  const centre = (canvas - 1) / 2;
  const [sr, sc] = [(rows - 1) / 2, (cols - 1) / 2];
  const px = (r: number, c: number, k: number) => (r < 0 || c < 0 || r >= rows || c >= cols ? 0 : src[(r * cols + c) * channels + k]!);
  for (let v = 0; v < canvas; v++) {
    for (let u = 0; u < canvas; u++) {
      const du = u - centre - t.dx;
      const dv = v - centre - t.dy;
      // Inverse rotation and scale, back to source pixel coordinates.
      const x = (cos * du + sin * dv) / t.scale + sc;
      const y = (-sin * du + cos * dv) / t.scale + sr;
      const [x0, y0] = [Math.floor(x), Math.floor(y)];
      const [fx, fy] = [x - x0, y - y0];
      for (let k = 0; k < channels; k++) {
        const value =
          px(y0, x0, k) * (1 - fx) * (1 - fy) + px(y0, x0 + 1, k) * fx * (1 - fy) + px(y0 + 1, x0, k) * (1 - fx) * fy + px(y0 + 1, x0 + 1, k) * fx * fy;
        out[offset + (v * canvas + u) * channels + k] = Math.round(value);
      }
    }
  }
}

/** Row ranges `[start, end)` of each file to distort (the rows a task can read); the others stay blank. */
export interface DistortRows {
  readonly train: ReadonlyArray<readonly [number, number]>;
  readonly test: ReadonlyArray<readonly [number, number]>;
}

function distortSplit(data: ImageDataset, split: ImageSplit, file: 'train' | 'test', d: AffineDistortion, ranges: ReadonlyArray<readonly [number, number]>): ImageSplit {
  const features = d.canvas * d.canvas * data.channels;
  const pixels = new Uint8Array(split.count * features);
  const todo = new Uint8Array(split.count);
  for (const [start, end] of ranges) todo.fill(1, Math.max(0, start), Math.min(split.count, end));
  for (let i = 0; i < split.count; i++) {
    if (!todo[i]) continue;
    const src = split.pixels.subarray(i * data.features, (i + 1) * data.features);
    warpImage(src, data.rows, data.cols, data.channels, d.canvas, imageTransform(d, data.rows, data.cols, file, i), pixels, i * features);
  }
  return { pixels, labels: split.labels, count: split.count, files: split.files };
}

const cache = new WeakMap<ImageDataset, Map<string, ImageDataset>>();

/**
 * `data` with its images distorted by `d`: all of them, or only the rows in `rows` (each image's transform
 * depends on its index alone, so those rows are the same either way; the rest are left blank, for callers
 * that never read them). Computed once per data set, distortion and rows while `data` is alive.
 */
export function distortDataset(data: ImageDataset, d: AffineDistortion, rows?: DistortRows): ImageDataset {
  const key = JSON.stringify([d.canvas, d.maxRotation, d.minScale, d.maxScale, d.seed, rows ?? null]);
  let byKey = cache.get(data);
  if (!byKey) cache.set(data, (byKey = new Map()));
  const hit = byKey.get(key);
  if (hit) return hit;
  const out: ImageDataset = {
    ...data,
    rows: d.canvas,
    cols: d.canvas,
    features: d.canvas * d.canvas * data.channels,
    train: distortSplit(data, data.train, 'train', d, rows?.train ?? [[0, data.train.count]]),
    test: distortSplit(data, data.test, 'test', d, rows?.test ?? [[0, data.test.count]]),
  };
  byKey.set(key, out);
  return out;
}
