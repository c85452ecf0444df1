import * as tf from '@tensorflow/tfjs-core';

/** `tf.tidy` for a function returning any tree of tensors (typed objects included): keeps what it returns. */
export function tidyTree<T>(fn: () => T): T {
  return tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as T;
}
