import * as tf from '@tensorflow/tfjs-core';
import { logAndSign, webGpuKernelsHere } from './webgpu-kernels';

/** How a learned optimizer turns each gradient coordinate into input features. */
export type GradientPreprocessing = 'none' | 'logAndSign';
export const GRADIENT_PREPROCESSINGS: readonly GradientPreprocessing[] = ['none', 'logAndSign'];

/** Input features per coordinate that `kind` produces. */
export function preprocessedFeatures(kind: GradientPreprocessing): number {
  return kind === 'logAndSign' ? 2 : 1;
}

/**
 * Gradient preprocessing of Andrychowicz et al. 2016, appendix A, feature-major: `g` is a row `[1, N]`
 * (N coordinates) and the result is `[features, N]`.
 *
 * - `none`: the gradient itself (`[1, N]`, returned as is).
 * - `logAndSign` with constant k: for each g, `(log(|g|)/k, sign(g))` if |g| ≥ e^(−k), else `(−1, e^k·g)`.
 *   Both branches agree at the threshold (−1, ±1), so the features are continuous in g; g = 0 gives (−1, 0).
 *
 * Built from plain ops, so it is differentiable where defined; learned optimizers treat gradients as
 * constants, and these ops then lie off the path that meta-gradients take.
 */
export function preprocessGradients(g: tf.Tensor2D, kind: GradientPreprocessing, k = 10): tf.Tensor2D {
  if (g.rank !== 2 || g.shape[0] !== 1) throw new Error(`preprocessGradients: expected a [1, N] row, got [${g.shape.join(', ')}]`);
  if (kind === 'none') return g;
  if (kind !== 'logAndSign') throw new Error(`unknown gradient preprocessing "${String(kind)}" (known: ${GRADIENT_PREPROCESSINGS.join(', ')})`);
  if (!(k > 0)) throw new Error(`logAndSign: k must be > 0, got ${k}`);
  // On a GPU the eleven ops below are eleven launches: one program there (webgpu-kernels.ts).
  if (webGpuKernelsHere()) return logAndSign(g, k);
  return tf.tidy(() => {
    const threshold = Math.exp(-k);
    const abs = tf.abs(g);
    const big = tf.greaterEqual(abs, threshold);
    // max() keeps log finite in the branch that `where` discards (|g| < e^(−k), g = 0 included).
    const logPart = tf.where(big, tf.div(tf.log(tf.maximum(abs, threshold)), k), tf.fill(g.shape, -1));
    const signPart = tf.where(big, tf.sign(g), tf.mul(g, Math.exp(k)));
    return tf.concat([logPart, signPart], 0) as tf.Tensor2D;
  });
}
