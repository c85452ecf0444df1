/**
 * A fully connected classifier as plain functions of named parameters (`layer0/kernel` [in, out],
 * `layer0/bias` [out], ...), so any optimizer (learned or not) can update them functionally.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng, type NamedTensors } from '@l2l/core';

export type MlpActivation = 'sigmoid' | 'relu' | 'tanh' | 'elu';
export const MLP_ACTIVATIONS: readonly MlpActivation[] = ['sigmoid', 'relu', 'tanh', 'elu'];

/**
 * How parameters are drawn. `normal`: every weight and bias ~ N(0, scale²), as in Andrychowicz et al.'s
 * code (scale 0.01). `glorot-uniform`: kernels ~ U(±√(6 / (in + out))), biases 0. `he-normal`: kernels ~
 * N(0, 2 / in), biases 0 (suits relu/elu).
 */
export type MlpInit = 'normal' | 'glorot-uniform' | 'he-normal';
export const MLP_INITS: readonly MlpInit[] = ['normal', 'glorot-uniform', 'he-normal'];

export interface MlpLayerShape {
  readonly inputs: number;
  readonly outputs: number;
}

/** Layer sizes of a net with `inputs` inputs, the given hidden layers and `outputs` logits. */
export function mlpLayers(inputs: number, hidden: readonly number[], outputs: number): MlpLayerShape[] {
  const sizes = [inputs, ...hidden, outputs];
  return sizes.slice(1).map((outs, i) => ({ inputs: sizes[i]!, outputs: outs }));
}

export const kernelName = (layer: number) => `layer${layer}/kernel`;
export const biasName = (layer: number) => `layer${layer}/bias`;

/** Fresh parameters drawn with `rng` (JavaScript randomness only, so every backend gives the same values). */
export function initMlpParams(layers: readonly MlpLayerShape[], init: MlpInit, initScale: number, rng: Rng): NamedTensors {
  const params: NamedTensors = {};
  layers.forEach(({ inputs, outputs }, i) => {
    const n = inputs * outputs;
    let kernel: Float32Array;
    let bias: Float32Array;
    switch (init) {
      case 'normal':
        kernel = rng.normals(n, 0, initScale);
        bias = rng.normals(outputs, 0, initScale);
        break;
      case 'glorot-uniform': {
        const limit = Math.sqrt(6 / (inputs + outputs));
        kernel = rng.uniforms(n, -limit, limit);
        bias = new Float32Array(outputs);
        break;
      }
      case 'he-normal':
        kernel = rng.normals(n, 0, Math.sqrt(2 / inputs));
        bias = new Float32Array(outputs);
        break;
      default:
        throw new Error(`unknown init "${init as string}"`);
    }
    params[kernelName(i)] = tf.tensor2d(kernel, [inputs, outputs]);
    params[biasName(i)] = tf.tensor1d(bias);
  });
  return params;
}

function activate(x: tf.Tensor2D, activation: MlpActivation): tf.Tensor2D {
  switch (activation) {
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'elu':
      return tf.elu(x);
    default:
      throw new Error(`unknown activation "${activation as string}"`);
  }
}

/**
 * `a · b` whose gradient is made of explicit transposes and plain products (dA = dy · bᵀ, dB = aᵀ · dy):
 * tfjs's own MatMul gradient multiplies transposed operands, which the wasm backend runs several times slower
 * (loss and gradient of the 784-20-10 net, batch 128: 4.3–7.4 → 3.2–3.4 ms). The forward pass is `tf.matMul`
 * itself; the gradient is built from tensors saved on the tape, so second derivatives still flow.
 */
export const matMulExplicitGrad = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [a, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      return [tf.matMul(dy, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy)];
    },
  };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * `x · w` for a matrix of data `x` (a minibatch of images): the gradient flows to `w` only (dW = xᵀ · dy, as in
 * `matMulExplicitGrad`), so the input gradient dy · wᵀ, which nothing uses, is never computed (with its transpose
 * of `w`: a third of the 784-20-10 net's products in its loss and gradient). `x` is captured, not an input of the
 * gradient: differentiating with respect to it is an error. Second derivatives with respect to `w` flow.
 */
export function matMulOfData(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [b, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    // Saved (kept until the gradient ran), as the minibatch may be freed with the forward pass's intermediates.
    save([x]);
    return { value: tf.matMul(x, b), gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => [tf.matMul(tf.transpose(saved[0]!), dy)] };
  }) as (b: tf.Tensor2D) => tf.Tensor2D;
  return op(w);
}

/**
 * Logits `[batch, outputs]` of `images` `[batch, inputs]`; hidden layers use `activation`, the last is linear. The
 * images are data: gradients flow to the parameters only (`matMulOfData`).
 */
export function mlpLogits(params: NamedTensors, images: tf.Tensor, layerCount: number, activation: MlpActivation): tf.Tensor2D {
  let x = images as tf.Tensor2D;
  for (let i = 0; i < layerCount; i++) {
    const kernel = params[kernelName(i)];
    const bias = params[biasName(i)];
    if (!kernel || !bias) {
      throw new Error(`MLP parameters lack ${kernel ? biasName(i) : kernelName(i)} (have: ${Object.keys(params).join(', ')})`);
    }
    const z = tf.add(i === 0 ? matMulOfData(x, kernel as tf.Tensor2D) : matMulExplicitGrad(x, kernel as tf.Tensor2D), bias) as tf.Tensor2D;
    x = i < layerCount - 1 ? activate(z, activation) : z;
  }
  return x;
}

/** Mean softmax cross-entropy of `logits` against one-hot `labels` (stable: through `logSoftmax`). */
export function softmaxCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}
