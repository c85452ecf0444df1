/**
 * Kernels the tfjs 4.22 wasm backend lacks (or gets wrong) and convolutional optimizees need for their
 * gradients, registered under the backend name "wasm". Registration only fills tfjs's kernel table, so
 * it is safe before the wasm backend exists. A missing kernel is added only when absent (a later tfjs
 * that ships its own keeps it); a replacement replaces tfjs's kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterWasm } from './conv2d-backprop-filter';
import { conv2dBackpropInputWasm } from './conv2d-backprop-input';
import { maxPoolGradWasm } from './max-pool-grad';
import { unsortedSegmentSumWasm } from './unsorted-segment-sum';

/** Kernels tfjs 4.22's wasm backend does not have. */
export const WASM_EXTRA_KERNELS: readonly tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2dBackpropFilterWasm as tf.KernelFunc },
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm as tf.KernelFunc },
];

/** Kernels tfjs 4.22's wasm backend has but computes wrongly (MaxPoolGrad) or slowly (Conv2DBackpropInput). */
export const WASM_REPLACED_KERNELS: readonly tf.KernelConfig[] = [
  { kernelName: tf.MaxPoolGrad, backendName: 'wasm', kernelFunc: maxPoolGradWasm as tf.KernelFunc },
  { kernelName: tf.Conv2DBackpropInput, backendName: 'wasm', kernelFunc: conv2dBackpropInputWasm as tf.KernelFunc },
];

/**
 * Registers the missing kernels that are still missing and the replacements that are not yet in place;
 * returns the names it (re)registered. The wasm package registers its own kernels when it is first
 * imported, so this must run after that import (backend.ts does both) or tfjs's own kernels would win.
 */
export function registerWasmKernels(): string[] {
  const added: string[] = [];
  for (const config of WASM_EXTRA_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm')) continue;
    tf.registerKernel(config);
    added.push(config.kernelName);
  }
  for (const config of WASM_REPLACED_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm')?.kernelFunc === config.kernelFunc) continue;
    if (tf.getKernel(config.kernelName, 'wasm')) tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
    added.push(config.kernelName);
  }
  return added;
}
