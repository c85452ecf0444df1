import * as tf from '@tensorflow/tfjs-core';

/**
 * tanh, computed as 2·σ(2x) − 1 on the wasm backend, whose Tanh kernel is scalar code: 5.8 ms for
 * [20, 15,910] against 0.7 ms for the four ops here (Sigmoid is vectorised). Elsewhere `tf.tanh`.
 * The two agree to float32 rounding (absolute error ≲ 1e-7).
 */
export function fastTanh<T extends tf.Tensor>(x: T): T {
  if (tf.getBackend() !== 'wasm') return tf.tanh(x);
  return tf.tidy(() => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2)), 2), 1)) as T;
}
