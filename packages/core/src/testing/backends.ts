import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';

/**
 * `run` on the cpu backend, then on webgpu (Mesa's software device where there is no GPU), for comparing what
 * the two computed: webgpu's reads are asynchronous, so `run` reads with `await tensor.data()`. Throws if the
 * webgpu run left a tensor or a backend buffer behind; webgpu stays in use.
 *
 * ```ts
 * const { cpu, webgpu } = await onCpuThenWebGpu(() => trainAndRead(myMetaOptimizer));
 * ```
 */
export async function onCpuThenWebGpu<T>(run: (backend: 'cpu' | 'webgpu') => Promise<T>, what = 'the run'): Promise<{ cpu: T; webgpu: T }> {
  await useBackend('cpu');
  const cpu = await run('cpu');
  await useBackend('webgpu');
  const before = tf.memory();
  const webgpu = await run('webgpu');
  const after = tf.memory();
  const tensors = after.numTensors - before.numTensors;
  const buffers = after.numDataBuffers - before.numDataBuffers;
  if (tensors !== 0 || buffers !== 0) throw new Error(`on webgpu ${what} left ${tensors} tensor(s) and ${buffers} backend buffer(s) behind`);
  return { cpu, webgpu };
}
