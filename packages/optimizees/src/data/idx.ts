/**
 * The IDX file format (LeCun's MNIST format): a 4-byte magic number `0 0 type ndims`, `ndims` big-endian
 * uint32 dimension sizes, then the data, big-endian, row-major. Files may be gzipped; gzip is detected
 * by its magic bytes (1f 8b), not by the file's name.
 */
import * as buffer from 'node:buffer';
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { UserError } from '@l2l/core';

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxTypedArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** The contents of an IDX file. */
export interface IdxArray {
  readonly dtype: IdxType;
  /** Dimension sizes, outermost first (`[60000, 28, 28]` for MNIST's training images). */
  readonly dims: readonly number[];
  /** The values, row-major; its length is the product of `dims`. */
  readonly data: IdxTypedArray;
}

interface TypeInfo {
  code: number;
  dtype: IdxType;
  bytes: number;
  make(n: number): IdxTypedArray;
  get(view: DataView, offset: number): number;
  set(view: DataView, offset: number, value: number): void;
}

const TYPES: readonly TypeInfo[] = [
  { code: 0x08, dtype: 'uint8', bytes: 1, make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o), set: (v, o, x) => v.setUint8(o, x) },
  { code: 0x09, dtype: 'int8', bytes: 1, make: (n) => new Int8Array(n), get: (v, o) => v.getInt8(o), set: (v, o, x) => v.setInt8(o, x) },
  { code: 0x0b, dtype: 'int16', bytes: 2, make: (n) => new Int16Array(n), get: (v, o) => v.getInt16(o), set: (v, o, x) => v.setInt16(o, x) },
  { code: 0x0c, dtype: 'int32', bytes: 4, make: (n) => new Int32Array(n), get: (v, o) => v.getInt32(o), set: (v, o, x) => v.setInt32(o, x) },
  { code: 0x0d, dtype: 'float32', bytes: 4, make: (n) => new Float32Array(n), get: (v, o) => v.getFloat32(o), set: (v, o, x) => v.setFloat32(o, x) },
  { code: 0x0e, dtype: 'float64', bytes: 8, make: (n) => new Float64Array(n), get: (v, o) => v.getFloat64(o), set: (v, o, x) => v.setFloat64(o, x) },
];

const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

/** True when the bytes start with gzip's magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses the bytes of an IDX file (already decompressed). `file` names the source in error messages.
 * Throws a `UserError` for a bad magic number, an unknown type code, a truncated file or trailing bytes.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const bad = (what: string) => new UserError(`${file}: not a valid IDX file: ${what}`);
  if (bytes.length < 4) throw bad(`the file is truncated (${bytes.length} bytes, shorter than the 4-byte header)`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw bad(`wrong magic number (the first two bytes must be 0, got ${hex(bytes[0]!)} ${hex(bytes[1]!)})`);
  }
  const info = TYPES.find((t) => t.code === bytes[2]);
  if (!info) {
    throw bad(`unknown data type code ${hex(bytes[2]!)} (known: ${TYPES.map((t) => `${hex(t.code)} ${t.dtype}`).join(', ')})`);
  }
  const ndims = bytes[3]!;
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw bad(`the file is truncated (${bytes.length} bytes, shorter than the ${headerBytes}-byte header of a ${ndims}-dimensional array)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i);
    dims.push(d);
    count *= d;
  }
  const expected = headerBytes + count * info.bytes;
  const shape = `[${dims.join(', ')}] ${info.dtype}`;
  if (bytes.length < expected) {
    throw bad(`the file is truncated (dims ${shape} need ${expected} bytes, the file has ${bytes.length})`);
  }
  if (bytes.length > expected) {
    throw bad(`${bytes.length - expected} trailing bytes after the data (dims ${shape} need ${expected} bytes, the file has ${bytes.length})`);
  }
  let data: IdxTypedArray;
  if (info.bytes === 1) {
    // A copy (Buffer#slice would share memory with the file's buffer, possibly a pooled one).
    const copy = new Uint8Array(count);
    copy.set(bytes.subarray(headerBytes, expected));
    data = info.dtype === 'uint8' ? copy : new Int8Array(copy.buffer);
  } else {
    data = info.make(count);
    for (let i = 0, o = headerBytes; i < count; i++, o += info.bytes) data[i] = info.get(view, o);
  }
  return { dtype: info.dtype, dims, data };
}

/** The most bytes an IDX file may hold once decompressed (MNIST's largest is 47 MB). */
export const MAX_IDX_BYTES = 2 ** 31;

/** Bytes an IDX file's header announces (header included), or null when `head` is too short to tell. */
function announcedBytes(head: Uint8Array): number | null {
  if (head.length < 4) return null;
  const info = TYPES.find((t) => t.code === head[2]);
  const headerBytes = 4 + 4 * head[3]!;
  if (!info || head[0] !== 0 || head[1] !== 0) return -1; // not IDX: parseIdx says why
  if (head.length < headerBytes) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let count = 1;
  for (let i = 0; i < head[3]!; i++) count *= view.getUint32(4 + 4 * i);
  return headerBytes + count * info.bytes;
}

/**
 * Gunzips `raw` without trusting it: the first bytes are inflated alone to read the IDX header, and the whole
 * is inflated with its output capped at what the header announces, so a gzip bomb stops at that size.
 */
function gunzipIdx(raw: Buffer, file: string): Uint8Array {
  const corrupt = (e: unknown) => new UserError(`${file}: corrupt gzip data (${(e as Error).message})`, { cause: e });
  let expected: number | null = null;
  for (let prefix = 64; expected === null; prefix *= 4) {
    let head: Buffer;
    try {
      // A prefix inflates to at most ~1,032 times its size; Z_SYNC_FLUSH returns what it holds so far.
      head = zlib.gunzipSync(raw.subarray(0, prefix), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch (e) {
      throw corrupt(e);
    }
    expected = announcedBytes(head);
    // Not IDX, or too short for its header: these bytes are enough for parseIdx to say which.
    if (expected === -1 || (expected === null && prefix >= raw.length)) return head;
  }
  if (expected > MAX_IDX_BYTES) {
    throw new UserError(`${file}: its IDX header announces ${expected} bytes of data, more than l2l reads (${MAX_IDX_BYTES} bytes)`);
  }
  try {
    return zlib.gunzipSync(raw, { maxOutputLength: Math.min(expected + 1, buffer.constants.MAX_LENGTH) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new UserError(`${file}: gzip data decompresses to more than the ${expected} bytes its IDX header announces (stopped there)`, { cause: e });
    }
    throw corrupt(e);
  }
}

/** Reads a file's bytes, gunzipping when it starts with gzip's magic number (capped by the IDX header); errors name the file. */
export function readMaybeGzip(file: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${file}: no such file`, { cause: e });
    if (code === 'EISDIR') throw new UserError(`${file}: is a directory, expected a file`, { cause: e });
    throw new UserError(`${file}: cannot read (${(e as Error).message})`, { cause: e });
  }
  if (!isGzip(raw)) return raw;
  return gunzipIdx(raw, file);
}

/** Reads an IDX file, raw or gzipped. Every error is a `UserError` that names the file. */
export function readIdx(file: string): IdxArray {
  return parseIdx(readMaybeGzip(file), file);
}

function typeOf(dtype: IdxType): TypeInfo {
  const info = TYPES.find((t) => t.dtype === dtype);
  if (!info) throw new Error(`unknown IDX dtype "${dtype}" (known: ${TYPES.map((t) => t.dtype).join(', ')})`);
  return info;
}

const INT_RANGES: Partial<Record<IdxType, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
};

/** The bytes of an IDX file holding `array` (gzipped when `gzip` is set). */
export function encodeIdx(array: { dtype: IdxType; dims: readonly number[]; data: ArrayLike<number> }, options: { gzip?: boolean } = {}): Buffer {
  const info = typeOf(array.dtype);
  const count = array.dims.reduce((a, b) => a * b, 1);
  if (array.dims.length > 255) throw new Error(`IDX arrays have at most 255 dimensions, got ${array.dims.length}`);
  if (array.data.length !== count) {
    throw new Error(`IDX data has ${array.data.length} values, dims [${array.dims.join(', ')}] need ${count}`);
  }
  const headerBytes = 4 + 4 * array.dims.length;
  const out = Buffer.alloc(headerBytes + count * info.bytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[2] = info.code;
  out[3] = array.dims.length;
  array.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  const range = INT_RANGES[array.dtype];
  for (let i = 0, o = headerBytes; i < count; i++, o += info.bytes) {
    const x = array.data[i]!;
    if (range && !(Number.isInteger(x) && x >= range[0] && x <= range[1])) {
      throw new Error(`IDX ${array.dtype} data must hold integers in [${range[0]}, ${range[1]}], got ${x} at index ${i}`);
    }
    info.set(view, o, x);
  }
  return options.gzip ? zlib.gzipSync(out) : out;
}

/** Writes an IDX file (gzipped when `gzip` is set). */
export function writeIdx(file: string, array: { dtype: IdxType; dims: readonly number[]; data: ArrayLike<number> }, options: { gzip?: boolean } = {}): void {
  fs.writeFileSync(file, encodeIdx(array, options));
}
