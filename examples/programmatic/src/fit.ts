import * as tf from '@tensorflow/tfjs';
import { learnedOptimizer } from '@l2l/pretrained';

export async function fitWithLearnedOptimizer(xs: tf.Tensor2D, ys: tf.Tensor2D) {
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 16, inputShape: [xs.shape[1]], activation: 'tanh' }), tf.layers.dense({ units: 1 })] });
  model.compile({ optimizer: learnedOptimizer('pretrained:quadratic-rnnprop'), loss: 'meanSquaredError' });
  return { model, history: await model.fit(xs, ys, { epochs: 20, batchSize: 32, verbose: 0 }) };
}
