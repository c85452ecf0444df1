/**
 * Micro-benchmark of the LSTM optimizer alone (no optimizee data): an unroll of `unroll` updates over the
 * parameter shapes of the MNIST MLP 784-20-10 (15,910 coordinates), differentiated with respect to φ as
 * meta-training does, on a cheap quadratic loss. Not part of the tests; `pnpm bench` measures the whole meta-iteration.
 *
 *     pnpm build && node bench/dist/lstm-micro.js [backend=wasm] [unroll=20] [iterations=7]
 */
import * as tf from '@tensorflow/tfjs-core';
import { countCoordinates, disposeTree, Rng, useBackend, type BackendChoice, type NamedTensors, type OptimizerState, type TensorTree } from '@l2l/core';
import { LstmMetaOptimizer } from '@l2l/meta-optimizers';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

async function main(): Promise<void> {
  const [backend = 'wasm', unrollArg = '20', itersArg = '7'] = process.argv.slice(2);
  const unroll = Number(unrollArg);
  const iterations = Number(itersArg);
  await useBackend(backend as BackendChoice);
  const shapes: Record<string, number[]> = { 'layer0/kernel': [784, 20], 'layer0/bias': [20], 'layer1/kernel': [20, 10], 'layer1/bias': [10] };
  const rng = new Rng(1);
  const params: NamedTensors = {};
  const curvature: NamedTensors = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    params[name] = tf.tensor(rng.normals(n, 0, 0.1), shape);
    curvature[name] = tf.tensor(rng.uniforms(n, 0.1, 2), shape);
  }
  const mo = new LstmMetaOptimizer({}, 0);
  const opt = mo.optimizer();
  const names = Object.keys(shapes);
  const loss = (p: NamedTensors) => tf.addN(names.map((n) => tf.sum(tf.mul(curvature[n]!, tf.square(p[n]!))))) as tf.Scalar;
  // Optimizee gradients, detached as meta-training detaches them.
  const grads = (p: NamedTensors) =>
    tf.tidy(() => Object.fromEntries(names.map((n) => [n, tf.mul(curvature[n]!, tf.tensor(p[n]!.dataSync(), p[n]!.shape))])));

  const metaTimes: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    const { value, grads: g } = tf.variableGrads(() => {
      let state: OptimizerState = opt.init(params);
      let total = tf.scalar(0);
      for (let t = 0; t < unroll; t++) {
        state = opt.update(state, grads(state.params), { step: t, training: true });
        total = tf.add(total, loss(state.params));
      }
      return total;
    }, Object.values(mo.variables));
    await Promise.all(Object.values(g).map((t) => t.data()));
    metaTimes.push(performance.now() - start);
    tf.dispose([value, ...Object.values(g)]);
  }

  const updateTimes: number[] = [];
  let state = opt.init(params);
  for (let i = 0; i < 30; i++) {
    const g = grads(state.params);
    const start = performance.now();
    const next = opt.update(state, g, { step: i, training: false });
    await next.params[names[0]!]!.data();
    updateTimes.push(performance.now() - start);
    disposeTree([state, g] as unknown as TensorTree, next as unknown as TensorTree);
    state = next;
  }
  disposeTree(state as unknown as TensorTree);

  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.length;
  console.log(`backend ${tf.getBackend()}, ${countCoordinates(params)} coordinates, unroll ${unroll}, lstm 2×20`);
  console.log(`meta-iteration (forward + meta-gradient): median ${median(metaTimes).toFixed(0)} ms, first ${metaTimes[0]!.toFixed(0)} ms, all ${metaTimes.map((t) => t.toFixed(0)).join(' ')}`);
  console.log(`one update without tape: median ${median(updateTimes).toFixed(1)} ms`);
  if (heap) console.log(`wasm heap: ${(heap / 2 ** 20).toFixed(0)} MiB`);
  tf.dispose([...Object.values(params), ...Object.values(curvature)]);
  mo.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
