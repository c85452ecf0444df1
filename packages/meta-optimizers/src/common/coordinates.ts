import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensors } from '@l2l/core';

/**
 * How a coordinatewise optimizer lays named tensors out on one coordinate axis: the tensors in `names`
 * order, each flattened row-major, back to back. Coordinate `offsets[i] + j` is entry j of `names[i]`.
 */
export interface CoordinateLayout {
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly sizes: readonly number[];
  readonly offsets: readonly number[];
  /** N: the total number of coordinates. */
  readonly total: number;
}

/** The layout of `tensors`, in their key order. */
export function coordinateLayout(tensors: NamedTensors): CoordinateLayout {
  const names = Object.keys(tensors);
  if (names.length === 0) throw new Error('no parameter tensors: a coordinatewise optimizer needs at least one');
  const shapes = names.map((n) => tensors[n]!.shape.slice());
  const sizes = names.map((n) => tensors[n]!.size);
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) {
    offsets.push(total);
    total += s;
  }
  return { names, shapes, sizes, offsets, total };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Throws unless `tensors` has exactly the names of `layout` with the same shapes; `what` names the
 * tensors in the message (`gradients`, say).
 */
export function checkLayout(layout: CoordinateLayout, tensors: NamedTensors, what: string): void {
  const have = Object.keys(tensors);
  const missing = layout.names.filter((n) => !(n in tensors));
  const extra = have.filter((n) => !layout.names.includes(n));
  if (missing.length || extra.length) {
    const parts = [];
    if (missing.length) parts.push(`missing ${missing.map((n) => `"${n}"`).join(', ')}`);
    if (extra.length) parts.push(`unexpected ${extra.map((n) => `"${n}"`).join(', ')}`);
    throw new Error(`${what} do not match the parameters: ${parts.join('; ')} (expected: ${layout.names.join(', ')})`);
  }
  layout.names.forEach((n, i) => {
    const shape = tensors[n]!.shape;
    if (!sameShape(shape, layout.shapes[i]!)) {
      throw new Error(`${what}: "${n}" has shape [${shape.join(', ')}], expected [${layout.shapes[i]!.join(', ')}]`);
    }
  });
}

/** The tensors of `layout`, flattened onto one coordinate row `[1, N]` (feature-major: one feature, N coordinates). */
export function flattenCoordinates(tensors: NamedTensors, layout: CoordinateLayout): tf.Tensor2D {
  return tf.tidy(() => {
    const flat = layout.names.map((n) => tf.reshape(tensors[n]!, [-1]));
    const row = flat.length === 1 ? flat[0]! : tf.concat(flat, 0);
    return tf.reshape(row, [1, layout.total]) as tf.Tensor2D;
  });
}

/** The inverse of `flattenCoordinates`: a `[1, N]` (or `[N]`) row cut back into named tensors of the layout's shapes. */
export function unflattenCoordinates(row: tf.Tensor, layout: CoordinateLayout): NamedTensors {
  if (row.size !== layout.total) throw new Error(`expected ${layout.total} coordinates, got ${row.size}`);
  return tf.tidy(() => {
    const flat = tf.reshape(row, [layout.total]);
    const parts = layout.names.length === 1 ? [flat] : tf.split(flat, layout.sizes as number[], 0);
    const out: NamedTensors = {};
    layout.names.forEach((n, i) => {
      out[n] = tf.reshape(parts[i]!, layout.shapes[i] as number[]);
    });
    return out;
  });
}
