/**
 * The grid generator and bilinear sampler of a spatial transformer (Jaderberg et al. 2015), from tfjs
 * ops with gradients for both the images and θ: the four neighbours are gathered from the flattened
 * images (their gradient scatters back with ScatterNd), and the weights are differentiable functions of
 * the sampling coordinates.
 *
 * Coordinates are normalised to [−1, 1] with −1 and 1 at the centres of the first and last pixels
 * (`align_corners`), so the identity θ = [1, 0, 0, 0, 1, 0] reproduces an image of the same size
 * exactly. Points outside the image read zeros.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * `table[index]` for float-valued integer indices, differentiable in `table` only. tfjs's `gather` takes
 * int32 indices, and when they are computed from θ (floor, cast) its gradient fails on the int32 path;
 * here the indices stay float32 and get a zero gradient. The table's gradient is a scatter-add, by
 * ScatterNd (which sums repeated indices) rather than gather's own UnsortedSegmentSum: tfjs's cpu
 * UnsortedSegmentSum runs a full equal/mul/sum over `dy` per table row, O(rows · dy), and the table here
 * has a row per pixel of the batch (128 · 42² on the defaults): minutes per gradient on the cpu backend,
 * where ScatterNd is linear on both backends.
 */
const gatherRows = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [table, index, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  const ids = tf.cast(index, 'int32');
  save([ids]);
  return {
    value: tf.gather(table, ids),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(tf.expandDims(saved[0]!, 1), dy, table.shape), tf.zerosLike(index)],
  };
}) as (table: tf.Tensor2D, index: tf.Tensor1D) => tf.Tensor2D;

/**
 * 1 where integer pixel (xi, yi) lies in a `rows × cols` image, else 0; zero gradient. Inside a custom
 * gradient so the comparisons (which have no gradient in tfjs) stay off the tape although θ feeds them.
 */
function insideMask(xi: tf.Tensor, yi: tf.Tensor, rows: number, cols: number): tf.Tensor {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, y] = args as [tf.Tensor, tf.Tensor];
    return {
      value: tf.cast(tf.logicalAnd(tf.logicalAnd(tf.greaterEqual(x, 0), tf.lessEqual(x, cols - 1)), tf.logicalAnd(tf.greaterEqual(y, 0), tf.lessEqual(y, rows - 1))), 'float32'),
      gradFunc: (dy: tf.Tensor) => [tf.zerosLike(dy), tf.zerosLike(dy)],
    };
  }) as (x: tf.Tensor, y: tf.Tensor) => tf.Tensor;
  return op(xi, yi);
}

/** The identity affine transform, row-major [[1, 0, 0], [0, 1, 0]]. */
export const IDENTITY_THETA: readonly number[] = [1, 0, 0, 0, 1, 0];

/**
 * Sampling points of the output grid: `[n, outRows·outCols, 2]` source coordinates (x, y) in [−1, 1]
 * units, `θ · (x_t, y_t, 1)` for each target point (x_t, y_t) of a regular grid.
 */
export function affineGrid(theta: tf.Tensor2D, outRows: number, outCols: number): tf.Tensor3D {
  return tf.tidy(() => {
    const n = theta.shape[0];
    const xs = tf.linspace(-1, 1, outCols);
    const ys = tf.linspace(-1, 1, outRows);
    const xt = tf.reshape(tf.tile(tf.reshape(xs, [1, outCols]), [outRows, 1]), [-1]);
    const yt = tf.reshape(tf.tile(tf.reshape(ys, [outRows, 1]), [1, outCols]), [-1]);
    const target = tf.stack([xt, yt, tf.onesLike(xt)]); // [3, P]
    const t = tf.reshape(theta, [n, 2, 3]);
    // [n, 2, 3] · [3, P] → [n, 2, P] → [n, P, 2]
    const source = tf.reshape(tf.matMul(tf.reshape(t, [n * 2, 3]), target), [n, 2, outRows * outCols]);
    return tf.transpose(source, [0, 2, 1]) as tf.Tensor3D;
  });
}

/**
 * Warps NHWC `images` with the affine transforms `theta` ([n, 6]), sampling bilinearly onto an
 * `outRows × outCols` grid: `[n, outRows, outCols, channels]`.
 */
export function bilinearSample(images: tf.Tensor4D, theta: tf.Tensor2D, outRows: number, outCols: number): tf.Tensor4D {
  const [n, rows, cols, channels] = images.shape;
  if (theta.shape[0] !== n || theta.shape[1] !== 6) throw new Error(`bilinearSample: theta must be [${n}, 6], got [${theta.shape}]`);
  const points = outRows * outCols;
  const grid = affineGrid(theta, outRows, outCols);
  // Pixel coordinates: −1 → 0, 1 → size − 1.
  const x = tf.mul(tf.add(tf.reshape(tf.slice(grid, [0, 0, 0], [n, points, 1]), [n, points]), 1), (cols - 1) / 2);
  const y = tf.mul(tf.add(tf.reshape(tf.slice(grid, [0, 0, 1], [n, points, 1]), [n, points]), 1), (rows - 1) / 2);
  const x0 = tf.floor(x);
  const y0 = tf.floor(y);
  const x1 = tf.add(x0, 1);
  const y1 = tf.add(y0, 1);
  const flat = tf.reshape(images, [n * rows * cols, channels]);
  const base = tf.mul(tf.reshape(tf.range(0, n), [n, 1]), rows * cols);
  /** Values at integer pixel (xi, yi), zero outside the image: [n, points, channels]. */
  const at = (xi: tf.Tensor, yi: tf.Tensor) => {
    const inside = insideMask(xi, yi, rows, cols);
    // Exact in float32 up to 2²⁴ pixels in the batch.
    const index = tf.add(base, tf.add(tf.mul(tf.clipByValue(yi, 0, rows - 1), cols), tf.clipByValue(xi, 0, cols - 1)));
    const v = tf.reshape(gatherRows(flat as tf.Tensor2D, tf.reshape(index, [-1]) as tf.Tensor1D), [n, points, channels]);
    return tf.mul(v, tf.expandDims(inside, 2));
  };
  // Weights from the real-valued coordinates, so the output is differentiable in θ (floor's gradient is 0).
  const wx1 = tf.sub(x, x0);
  const wx0 = tf.sub(1, wx1);
  const wy1 = tf.sub(y, y0);
  const wy0 = tf.sub(1, wy1);
  const w = (a: tf.Tensor, b: tf.Tensor) => tf.expandDims(tf.mul(a, b), 2);
  const out = tf.addN([
    tf.mul(at(x0, y0), w(wx0, wy0)),
    tf.mul(at(x1, y0), w(wx1, wy0)),
    tf.mul(at(x0, y1), w(wx0, wy1)),
    tf.mul(at(x1, y1), w(wx1, wy1)),
  ]);
  return tf.reshape(out, [n, outRows, outCols, channels]) as tf.Tensor4D;
}
