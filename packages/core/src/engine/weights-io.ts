import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { NamedTensors } from '../tensor-tree';

/** One entry of a weights manifest, in the spirit of tfjs's weightsManifest. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
}

export interface WeightsManifest {
  format: 'l2l-weights';
  version: 1;
  weights: WeightSpec[];
}

/**
 * Writes named tensors as `<base>.json` (manifest: names, shapes, dtypes, in order) and `<base>.bin`
 * (their values, little-endian, concatenated in manifest order). Names are sorted so files are stable.
 */
export function writeWeights(dir: string, base: string, tensors: NamedTensors): void {
  const names = Object.keys(tensors).sort();
  const specs: WeightSpec[] = [];
  const chunks: Buffer[] = [];
  for (const name of names) {
    const t = tensors[name]!;
    if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new Error(`weight "${name}": dtype ${t.dtype} cannot be saved`);
    const data = t.dataSync() as Float32Array | Int32Array;
    specs.push({ name, shape: [...t.shape], dtype: t.dtype });
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }
  const manifest: WeightsManifest = { format: 'l2l-weights', version: 1, weights: specs };
  fs.writeFileSync(path.join(dir, `${base}.json`), JSON.stringify(manifest, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, `${base}.bin`), Buffer.concat(chunks));
}

/** Reads what `writeWeights` wrote; the caller owns the tensors. Errors name the file. */
export function readWeights(dir: string, base: string): NamedTensors {
  const manifestFile = path.join(dir, `${base}.json`);
  const binFile = path.join(dir, `${base}.bin`);
  let manifest: WeightsManifest;
  let bin: Buffer;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
    bin = fs.readFileSync(binFile);
  } catch (e) {
    throw new UserError(`${manifestFile}: cannot read weights: ${(e as Error).message}`);
  }
  if (manifest.format !== 'l2l-weights' || !Array.isArray(manifest.weights)) {
    throw new UserError(`${manifestFile}: not an l2l weights manifest`);
  }
  const expected = manifest.weights.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  if (bin.byteLength !== expected) {
    throw new UserError(`${binFile}: expected ${expected} bytes for the weights in ${path.basename(manifestFile)}, found ${bin.byteLength}`);
  }
  const out: NamedTensors = {};
  let offset = 0;
  for (const w of manifest.weights) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    const copy = bin.buffer.slice(bin.byteOffset + offset, bin.byteOffset + offset + 4 * size);
    const values = w.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
    out[w.name] = tf.tensor(values, w.shape, w.dtype);
    offset += 4 * size;
  }
  return out;
}
