/**
 * Building blocks of convolutional optimizees as plain functions of named parameters: parameter
 * specifications (name, shape, initialisation, group), convolution blocks, batch norm, pooling and
 * dense layers. Shared by `conv-net` and `stn`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng, UserError, type NamedTensors } from '@l2l/core';
import { matMulExplicitGrad } from '../mlp/network';

export type ConvActivation = 'relu' | 'tanh' | 'sigmoid' | 'elu';
export const CONV_ACTIVATIONS: readonly ConvActivation[] = ['relu', 'tanh', 'sigmoid', 'elu'];
export type Pooling = 'max' | 'avg' | 'none';
export const POOLINGS: readonly Pooling[] = ['max', 'avg', 'none'];
export type ConvPadding = 'same' | 'valid';
export const CONV_PADDINGS: readonly ConvPadding[] = ['same', 'valid'];
/**
 * `normal`: weights and biases ~ N(0, initScale²), as in Andrychowicz et al.'s code (0.01);
 * `he-normal`: weights ~ N(0, 2 / fan-in), biases 0; `glorot-uniform`: weights ~ U(±√(6 / (fan-in + fan-out))), biases 0.
 * Batch-norm offsets always start at 0.
 */
export type ConvInit = 'normal' | 'he-normal' | 'glorot-uniform';
export const CONV_INITS: readonly ConvInit[] = ['normal', 'he-normal', 'glorot-uniform'];

/**
 * The parameter groups convolutional tasks report, as DeepMind's `cifar-multi` assigns them: the conv
 * kernels to "conv"; conv biases, batch-norm offsets and dense layers to "fc".
 */
export type ConvGroup = 'conv' | 'fc';

/** How one parameter tensor starts. */
export type ParamInit =
  | { kind: 'weight'; fanIn: number; fanOut: number }
  | { kind: 'bias' }
  | { kind: 'zeros' }
  | { kind: 'constant'; values: readonly number[] };

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: ParamInit;
  readonly group: ConvGroup;
}

/** Fresh parameters for `specs`, drawn in order from `rng` (JavaScript randomness: every backend gets the same values). */
export function initFromSpecs(specs: readonly ParamSpec[], init: ConvInit, initScale: number, rng: Rng): NamedTensors {
  const params: NamedTensors = {};
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    const p = spec.init;
    switch (p.kind) {
      case 'weight':
        values =
          init === 'normal'
            ? rng.normals(n, 0, initScale)
            : init === 'he-normal'
              ? rng.normals(n, 0, Math.sqrt(2 / p.fanIn))
              : rng.uniforms(n, -Math.sqrt(6 / (p.fanIn + p.fanOut)), Math.sqrt(6 / (p.fanIn + p.fanOut)));
        break;
      case 'bias':
        values = init === 'normal' ? rng.normals(n, 0, initScale) : new Float32Array(n);
        break;
      case 'zeros':
        values = new Float32Array(n);
        break;
      case 'constant':
        if (p.values.length !== n) throw new Error(`${spec.name}: ${p.values.length} initial values for ${n} entries`);
        values = Float32Array.from(p.values);
        break;
    }
    params[spec.name] = tf.tensor(values, [...spec.shape]);
  }
  return params;
}

/** Each parameter's group, by name. */
export function groupsOf(specs: readonly ParamSpec[]): Record<string, ConvGroup> {
  return Object.fromEntries(specs.map((s) => [s.name, s.group]));
}

export function activate<T extends tf.Tensor>(x: T, activation: ConvActivation): T {
  switch (activation) {
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'elu':
      return tf.elu(x);
    default:
      throw new Error(`unknown activation "${activation as string}"`);
  }
}

/** Batch-norm ε, Sonnet's default (DeepMind's networks). */
export const BATCH_NORM_EPSILON = 1e-3;

/**
 * Batch norm in training mode with an offset and no scale (Sonnet's default): each channel (last axis)
 * is normalised by the mean and variance over every other axis of this batch, then shifted. Written from
 * elementwise ops so its gradient (through the batch statistics) runs on every backend.
 */
export function batchNorm<T extends tf.Tensor>(x: T, offset: tf.Tensor): T {
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const mean = tf.mean(x, axes, true);
  const centred = tf.sub(x, mean);
  const variance = tf.mean(tf.square(centred), axes, true);
  return tf.add(tf.mul(centred, tf.rsqrt(tf.add(variance, BATCH_NORM_EPSILON))), offset) as T;
}

/** 2 × 2 pooling of stride 2 with SAME padding (DeepMind's CIFAR net), or nothing. */
export function pool(x: tf.Tensor4D, pooling: Pooling): tf.Tensor4D {
  switch (pooling) {
    case 'max':
      return tf.maxPool(x, 2, 2, 'same');
    case 'avg':
      return avgPoolSame(x);
    case 'none':
      return x;
    default:
      throw new Error(`unknown pooling "${pooling as string}"`);
  }
}

/**
 * 2 × 2 average pooling of stride 2, SAME padding: at an odd edge the mean is over the pixels inside the
 * image, as in TensorFlow. Not `tf.avgPool(x, 2, 2, 'same')`, whose forward pass divides by the pixels
 * inside but whose gradient (AvgPoolGrad, cpu and wasm alike in tfjs 4.22) divides by 4, off by 2× at odd
 * edges. Zero-padding to even sides, a VALID pool and a fixed rescale give the same values with exact
 * gradients.
 */
function avgPoolSame(x: tf.Tensor4D): tf.Tensor4D {
  const [, rows, cols] = x.shape;
  const [padR, padC] = [rows % 2, cols % 2];
  if (!padR && !padC) return tf.avgPool(x, 2, 2, 'valid');
  const pooled = tf.avgPool(tf.pad(x, [[0, 0], [0, padR], [0, padC], [0, 0]]), 2, 2, 'valid');
  const [outR, outC] = [pooled.shape[1], pooled.shape[2]];
  // 4 / (pixels inside the window): 2 on a padded last row or column, 4 in a padded corner.
  const scale = new Float32Array(outR * outC);
  for (let r = 0; r < outR; r++) {
    for (let c = 0; c < outC; c++) scale[r * outC + c] = (padR && r === outR - 1 ? 2 : 1) * (padC && c === outC - 1 ? 2 : 1);
  }
  return tf.mul(pooled, tf.tensor4d(scale, [1, outR, outC, 1]));
}

/** Side length after a conv (stride 1) and a pooling. */
export function convOutSide(side: number, kernel: number, padding: ConvPadding, pooling: Pooling): number {
  const conv = padding === 'same' ? side : side - kernel + 1;
  return pooling === 'none' ? conv : Math.ceil(conv / 2);
}

/** A stack of conv blocks: [k×k conv, stride 1] → [batch norm] → activation → [2×2 pool]. */
export interface ConvStack {
  /** Parameter name prefix: `${prefix}${i}/kernel`. */
  readonly prefix: string;
  readonly channels: readonly number[];
  readonly kernelSize: number;
  readonly padding: ConvPadding;
  readonly pooling: Pooling;
  readonly batchNorm: boolean;
  readonly activation: ConvActivation;
}

/** Parameter specs of a conv stack over `inChannels` channels: kernel, then bias (or, with batch norm, its offset). */
export function convStackSpecs(stack: ConvStack, inChannels: number): ParamSpec[] {
  const specs: ParamSpec[] = [];
  let cin = inChannels;
  stack.channels.forEach((cout, i) => {
    const k = stack.kernelSize;
    specs.push({ name: `${stack.prefix}${i}/kernel`, shape: [k, k, cin, cout], init: { kind: 'weight', fanIn: k * k * cin, fanOut: k * k * cout }, group: 'conv' });
    // With batch norm a conv bias is redundant (the mean is subtracted), so the offset replaces it.
    if (stack.batchNorm) specs.push({ name: `${stack.prefix}${i}/offset`, shape: [cout], init: { kind: 'zeros' }, group: 'fc' });
    else specs.push({ name: `${stack.prefix}${i}/bias`, shape: [cout], init: { kind: 'bias' }, group: 'fc' });
    cin = cout;
  });
  return specs;
}

/**
 * The image size after the stack, for `rows × cols` inputs; a UserError naming `component` when a
 * "valid" conv would get an image smaller than its kernel.
 */
export function convStackOutput(stack: ConvStack, rows: number, cols: number, component: string): [number, number] {
  stack.channels.forEach((_, i) => {
    if (stack.padding === 'valid' && (rows < stack.kernelSize || cols < stack.kernelSize)) {
      throw new UserError(
        `${component}: conv layer ${i + 1} of ${stack.channels.length} gets ${rows}×${cols} images, smaller than kernelSize ${stack.kernelSize} with padding "valid"; ` +
          'use fewer layers, a smaller kernelSize or padding "same"',
      );
    }
    [rows, cols] = [convOutSide(rows, stack.kernelSize, stack.padding, stack.pooling), convOutSide(cols, stack.kernelSize, stack.padding, stack.pooling)];
  });
  return [rows, cols];
}

function need(params: NamedTensors, name: string): tf.Tensor {
  const t = params[name];
  if (!t) throw new Error(`parameters lack ${name} (have: ${Object.keys(params).join(', ')})`);
  return t;
}

/** Runs a conv stack on NHWC images. */
export function convStack(params: NamedTensors, stack: ConvStack, x: tf.Tensor4D): tf.Tensor4D {
  let h = x;
  stack.channels.forEach((_, i) => {
    let z = tf.conv2d(h, need(params, `${stack.prefix}${i}/kernel`) as tf.Tensor4D, 1, stack.padding);
    z = stack.batchNorm ? batchNorm(z, need(params, `${stack.prefix}${i}/offset`)) : tf.add(z, need(params, `${stack.prefix}${i}/bias`));
    h = pool(activate(z, stack.activation), stack.pooling);
  });
  return h;
}

/** A stack of dense layers: hidden layers [linear → [batch norm] → activation], then a linear output layer. */
export interface DenseStack {
  readonly prefix: string;
  readonly hidden: readonly number[];
  readonly outputs: number;
  readonly batchNorm: boolean;
  readonly activation: ConvActivation;
}

const denseName = (stack: DenseStack, i: number) => (i < stack.hidden.length ? `${stack.prefix}${i}` : `${stack.prefix}out`);

export function denseStackSpecs(stack: DenseStack, inputs: number): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const sizes = [inputs, ...stack.hidden, stack.outputs];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const [fin, fout] = [sizes[i]!, sizes[i + 1]!];
    const name = denseName(stack, i);
    specs.push({ name: `${name}/kernel`, shape: [fin, fout], init: { kind: 'weight', fanIn: fin, fanOut: fout }, group: 'fc' });
    specs.push({ name: `${name}/bias`, shape: [fout], init: { kind: 'bias' }, group: 'fc' });
    if (stack.batchNorm && i < stack.hidden.length) specs.push({ name: `${name}/offset`, shape: [fout], init: { kind: 'zeros' }, group: 'fc' });
  }
  return specs;
}

/** Runs a dense stack on `[n, inputs]` features; returns `[n, outputs]`. */
export function denseStack(params: NamedTensors, stack: DenseStack, x: tf.Tensor2D): tf.Tensor2D {
  let h = x;
  const layers = stack.hidden.length + 1;
  for (let i = 0; i < layers; i++) {
    const name = denseName(stack, i);
    let z = tf.add(matMulExplicitGrad(h, need(params, `${name}/kernel`) as tf.Tensor2D), need(params, `${name}/bias`)) as tf.Tensor2D;
    if (i < stack.hidden.length) {
      if (stack.batchNorm) z = batchNorm(z, need(params, `${name}/offset`));
      z = activate(z, stack.activation);
    }
    h = z;
  }
  return h;
}

/** The options of a classifier of conv blocks and then dense layers: conv-net's network, stn's classifier. */
export interface ConvClassifierOptions {
  readonly layers: number;
  readonly channels: number;
  readonly kernelSize: number;
  readonly padding: ConvPadding;
  readonly pooling: Pooling;
  readonly batchNorm: boolean;
  readonly activation: ConvActivation;
  readonly dense: readonly number[];
}

/** A classifier's stacks (`conv…`, then `dense…` with one logit per class) on `rows × cols × channels` images, and its parameters. */
export interface ConvClassifier {
  readonly conv: ConvStack;
  readonly dense: DenseStack;
  readonly specs: readonly ParamSpec[];
}

export function convClassifier(o: ConvClassifierOptions, input: { rows: number; cols: number; channels: number }, classes: number, component: string): ConvClassifier {
  const conv: ConvStack = { prefix: 'conv', channels: Array<number>(o.layers).fill(o.channels), kernelSize: o.kernelSize, padding: o.padding, pooling: o.pooling, batchNorm: o.batchNorm, activation: o.activation };
  const dense: DenseStack = { prefix: 'dense', hidden: [...o.dense], outputs: classes, batchNorm: o.batchNorm, activation: o.activation };
  const [rows, cols] = convStackOutput(conv, input.rows, input.cols, component);
  return { conv, dense, specs: [...convStackSpecs(conv, input.channels), ...denseStackSpecs(dense, rows * cols * o.channels)] };
}

/** Logits `[n, classes]` of NHWC images through a classifier's stacks. */
export function convClassifierLogits(params: NamedTensors, c: Pick<ConvClassifier, 'conv' | 'dense'>, x: tf.Tensor4D): tf.Tensor2D {
  const h = convStack(params, c.conv, x);
  return denseStack(params, c.dense, tf.reshape(h, [h.shape[0], -1]) as tf.Tensor2D);
}

/** Elements in a list of parameter specs (a task's coordinates). */
export function specsSize(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** Full-size tensors one layer makes: conv or matmul, bias add or batch norm (centred, squared, scaled, shifted), activation. */
const layerTensors = (batchNorm: boolean, activated: boolean) => 1 + (batchNorm ? 4 : 1) + (activated ? 1 : 0);

/**
 * Elements one image leaves on the tape through a conv stack on `rows × cols` inputs: each block's full-size
 * tensors (`layerTensors`) and its pooled output (a lower bound: reductions and pooling's own steps are left out).
 */
export function convStackActivations(stack: ConvStack, rows: number, cols: number): number {
  let n = 0;
  stack.channels.forEach((c) => {
    const [r, k] = stack.padding === 'same' ? [rows, cols] : [rows - stack.kernelSize + 1, cols - stack.kernelSize + 1];
    [rows, cols] = [convOutSide(rows, stack.kernelSize, stack.padding, stack.pooling), convOutSide(cols, stack.kernelSize, stack.padding, stack.pooling)];
    n += r * k * c * layerTensors(stack.batchNorm, true) + (stack.pooling === 'none' ? 0 : rows * cols * c);
  });
  return n;
}

/** Elements one input leaves on the tape through a dense stack: each layer's full-size tensors (`layerTensors`). */
export function denseStackActivations(stack: DenseStack): number {
  return stack.hidden.reduce((a, h) => a + h * layerTensors(stack.batchNorm, true), 0) + stack.outputs * layerTensors(false, false);
}
