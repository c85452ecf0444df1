import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { validateWithSchema, type JsonSchema } from '../schema/validate';
import { UserError } from '../errors';
import { disposeTree, type NamedTensors } from '../tensor-tree';

const manifestSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'version', 'weights'],
  properties: {
    format: { const: 'l2l-weights' },
    version: { const: 1 },
    weights: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'shape', 'dtype'],
        properties: {
          name: { type: 'string', minLength: 1 },
          shape: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 }, maxItems: 8 },
          dtype: { enum: ['float32', 'int32'] },
        },
      },
    },
  },
};


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

/** Named tensors as a manifest (names sorted, so output is stable) and their values, little-endian, concatenated. */
export function encodeWeights(tensors: NamedTensors): { manifest: WeightsManifest; data: Buffer } {
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
  return { manifest: { format: 'l2l-weights', version: 1, weights: specs }, data: Buffer.concat(chunks) };
}

/**
 * What `encodeWeights` made, back as tensors the caller owns; errors name `where` (the files, or a config).
 * Non-finite values are refused (a corrupt checkpoint) unless `finite` is false (a meta-gradient in transit,
 * which the trainer checks itself).
 */
export function decodeWeights(manifest: WeightsManifest, data: Uint8Array, where: { manifest: string; data: string }, options: { finite?: boolean } = {}): NamedTensors {
  if ((manifest as { format?: unknown })?.format !== 'l2l-weights') throw new UserError(`${where.manifest}: not an l2l weights manifest`);
  validateWithSchema(manifestSchema, manifest, where.manifest);
  const names = new Set<string>();
  let expected = 0;
  for (const w of manifest.weights) {
    if (names.has(w.name)) throw new UserError(`${where.manifest}: weight "${w.name}" is listed twice`);
    names.add(w.name);
    expected += 4 * w.shape.reduce((a, b) => a * b, 1);
  }
  if (data.byteLength !== expected) {
    throw new UserError(`${where.data}: expected ${expected} bytes for the weights in ${path.basename(where.manifest)}, found ${data.byteLength}`);
  }
  const out: NamedTensors = {};
  let offset = 0;
  for (const w of manifest.weights) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    const copy = data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + 4 * size);
    const values = w.dtype === 'int32' ? new Int32Array(copy) : new Float32Array(copy);
    if (values instanceof Float32Array && options.finite !== false) {
      const bad = values.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) {
        disposeTree(out);
        throw new UserError(`${where.data}: weight "${w.name}" holds a non-finite value (${values[bad]} at index ${bad}); the checkpoint is corrupt`);
      }
    }
    out[w.name] = tf.tensor(values, w.shape, w.dtype);
    offset += 4 * size;
  }
  return out;
}

/**
 * Writes named tensors as `<base>.json` (manifest: names, shapes, dtypes, in order) and `<base>.bin`
 * (their values, little-endian, concatenated in manifest order).
 */
export function writeWeights(dir: string, base: string, tensors: NamedTensors): void {
  const { manifest, data } = encodeWeights(tensors);
  fs.writeFileSync(path.join(dir, `${base}.json`), JSON.stringify(manifest, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, `${base}.bin`), data);
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
  return decodeWeights(manifest, bin, { manifest: manifestFile, data: binFile });
}
