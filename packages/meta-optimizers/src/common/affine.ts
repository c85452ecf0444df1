import * as tf from '@tensorflow/tfjs-core';
import { rowSlice } from './row-slice';
import { OUTER_CHUNKED_FROM, sumOfOuterProducts, webGpuKernelsHere } from './webgpu-kernels';

/**
 * `W · [x; 1]` for feature-major inputs: `kernel` is `[out, in + 1]` (its last column the bias), `x` is
 * `[in, N]` (N coordinates), the result `[out, N]`. One matmul forward; the gradient uses explicit
 * transposes and plain matmuls, which tfjs-wasm runs several times faster than its transposed matmuls.
 */
export const affine = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [kernel, x, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
  const [rows, n] = x.shape;
  if (kernel.rank !== 2 || x.rank !== 2 || kernel.shape[1] !== rows + 1) {
    throw new Error(`affine: kernel [${kernel.shape.join(', ')}] does not fit input [${x.shape.join(', ')}] (expected [out, ${rows + 1}])`);
  }
  const z = tf.concat([x, tf.ones([1, n])], 0) as tf.Tensor2D;
  save([kernel, z]);
  return {
    value: tf.matMul(kernel, z),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => {
      // In a tidy: tfjs frees nothing a customGrad's gradient allocates until the whole backward pass ends.
      return tf.tidy(() => {
        const [k, zs] = saved as [tf.Tensor2D, tf.Tensor2D];
        // Long sums on webgpu are chunked (sumOfOuterProducts). Below that, tfjs-webgpu's product with zs
        // transposed as an operand measured 5–12 % slower on M than this explicit transpose (bench/results.md).
        const dKernel = webGpuKernelsHere() && n >= OUTER_CHUNKED_FROM ? sumOfOuterProducts(dy, zs) : tf.matMul(dy, tf.transpose(zs));
        const dz = tf.matMul(tf.transpose(k), dy);
        return [dKernel, rowSlice(dz, 0, rows)];
      });
    },
  };
}) as (kernel: tf.Tensor2D, x: tf.Tensor2D) => tf.Tensor2D;
