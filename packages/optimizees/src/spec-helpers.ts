/* Helpers shared by this package's spec files (not built into dist). */
import * as tf from '@tensorflow/tfjs-core';
import { isUserError, type TaskFamily } from '@l2l/core';

/** Runs `fn`, expects it to throw a UserError, and returns that error (for its message). */
export function userError(fn: () => unknown): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isUserError(caught)).toBe(true);
  return caught as Error;
}

/**
 * What a size estimate bounds, measured on one built task of `family`: its coordinates, and the bytes one taped
 * step holds (the minibatch and every tensor the loss leaves for the backward pass, read at the end of the forward
 * pass inside `tf.grads`).
 */
export function measureTaskSizes(family: TaskFamily): { coordinates: number; stepBytes: number } {
  const task = family.build(family.sample(0, 'train'));
  const params = task.initParams(0);
  const names = Object.keys(params);
  const coordinates = names.reduce((n, k) => n + params[k]!.size, 0);
  let stepBytes = 0;
  const before = tf.memory().numBytes;
  tf.tidy(() => {
    const batch = task.batch(0, 0);
    tf.grads((...xs: tf.Tensor[]) => {
      const loss = task.loss(Object.fromEntries(names.map((n, i) => [n, xs[i]!])), batch);
      stepBytes = tf.memory().numBytes - before;
      return loss;
    })(names.map((n) => params[n]!));
  });
  tf.dispose(Object.values(params));
  task.dispose();
  return { coordinates, stepBytes };
}
