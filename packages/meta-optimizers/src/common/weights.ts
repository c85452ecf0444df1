import * as tf from '@tensorflow/tfjs-core';
import { cloneNamed, Rng, type NamedTensors } from '@l2l/core';

/** Where an optimizer reads φ from: the live variables (`NamedVariables`) or given tensors (`GivenWeights`). */
export interface WeightSource {
  readonly variables: Readonly<Record<string, tf.Tensor>>;
  get(name: string): tf.Tensor;
}

/**
 * φ given as tensors (a perturbed copy, say), checked against the live variables' names and shapes; the caller
 * keeps the tensors. What `MetaOptimizer.optimizer(weights)` builds on, so the variables are never touched.
 */
export class GivenWeights implements WeightSource {
  readonly variables: Readonly<Record<string, tf.Tensor>>;
  constructor(
    expected: Readonly<Record<string, tf.Tensor>>,
    weights: Readonly<Record<string, tf.Tensor>>,
    private readonly owner: string,
  ) {
    checkWeights(expected, weights as NamedTensors, owner);
    this.variables = Object.freeze({ ...weights });
  }

  get(name: string): tf.Tensor {
    const w = this.variables[name];
    if (!w) throw new Error(`${this.owner}: no weight named "${name}"`);
    return w;
  }
}

/**
 * A learned optimizer's weights φ as trainable variables under stable names. tfjs variable names are
 * global, so the variables get tfjs's own unique names; the stable names are the record's keys.
 */
export class NamedVariables implements WeightSource {
  private vars: Record<string, tf.Variable> | undefined;

  /** Takes ownership of `initial` (its tensors become the variables' first values and are disposed). */
  constructor(initial: NamedTensors, private readonly owner: string) {
    const vars: Record<string, tf.Variable> = {};
    for (const [name, t] of Object.entries(initial)) {
      vars[name] = tf.variable(t, true);
      t.dispose();
    }
    this.vars = Object.freeze(vars) as Record<string, tf.Variable>;
  }

  /** The variables; throws once disposed. */
  get variables(): Readonly<Record<string, tf.Variable>> {
    if (!this.vars) throw new Error(`${this.owner}: used after dispose()`);
    return this.vars;
  }

  /** The variable named `name`. */
  get(name: string): tf.Variable {
    const v = this.variables[name];
    if (!v) throw new Error(`${this.owner}: no weight named "${name}"`);
    return v;
  }

  /** Copies of every weight; the caller owns them. */
  getWeights(): NamedTensors {
    return cloneNamed(this.variables);
  }

  /**
   * Assigns every weight from `weights`, which must have exactly the same names and shapes (checked
   * before anything is assigned, so a failed call changes nothing). The caller keeps `weights`.
   */
  setWeights(weights: NamedTensors): void {
    checkWeights(this.variables, weights, this.owner);
    for (const [name, v] of Object.entries(this.variables)) {
      const w = weights[name]!;
      // Assigning a variable its own data would free it first.
      if (w.dataId !== v.dataId) v.assign(w);
    }
  }

  dispose(): void {
    if (!this.vars) return;
    for (const v of Object.values(this.vars)) v.dispose();
    this.vars = undefined;
  }
}

/** Throws an error naming the first weight whose name, shape or dtype does not match `expected`. */
export function checkWeights(expected: Readonly<Record<string, tf.Tensor>>, weights: NamedTensors, owner: string): void {
  if (weights === null || typeof weights !== 'object') throw new Error(`${owner}: setWeights expects named tensors`);
  const names = Object.keys(expected);
  for (const name of Object.keys(weights)) {
    if (!(name in expected)) throw new Error(`${owner}: unknown weight "${name}" (expected: ${names.join(', ')})`);
  }
  for (const name of names) {
    const w = weights[name];
    if (w === undefined) throw new Error(`${owner}: missing weight "${name}" (expected: ${names.join(', ')})`);
    if (!(w instanceof tf.Tensor)) throw new Error(`${owner}: weight "${name}" is not a tensor`);
    const want = expected[name]!.shape;
    if (w.shape.length !== want.length || w.shape.some((d, i) => d !== want[i])) {
      throw new Error(`${owner}: weight "${name}" has shape [${w.shape.join(', ')}], expected [${want.join(', ')}]`);
    }
    if (w.dtype !== 'float32') throw new Error(`${owner}: weight "${name}" has dtype ${w.dtype}, expected float32`);
  }
}

/**
 * Values from a normal distribution with standard deviation `std`, redrawn beyond two standard deviations
 * (a truncated normal, as Sonnet/TensorFlow initialise linear layers).
 */
export function truncatedNormals(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z: number;
    do z = rng.normal(); while (Math.abs(z) > 2);
    out[i] = z * std;
  }
  return out;
}

/**
 * A kernel `[rows, fanIn + 1]` that multiplies `[inputs; 1]`: weight columns drawn from a truncated
 * normal with std `scale / sqrt(fanIn)` (seeded by `seed` and `label`), the last column the bias.
 * `bias(row)` gives each row's bias (0 when omitted).
 */
export function initKernelWithBias(
  seed: number,
  label: string,
  rows: number,
  fanIn: number,
  scale: number,
  bias?: (row: number) => number,
): tf.Tensor2D {
  const rng = Rng.from(seed, label);
  const w = truncatedNormals(rng, rows * fanIn, fanIn > 0 ? scale / Math.sqrt(fanIn) : 0);
  const cols = fanIn + 1;
  const values = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    values.set(w.subarray(r * fanIn, (r + 1) * fanIn), r * cols);
    values[r * cols + fanIn] = bias ? bias(r) : 0;
  }
  return tf.tensor2d(values, [rows, cols]);
}
