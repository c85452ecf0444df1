/**
 * Kernels the tfjs 4.22 wasm backend lacks and convolutional optimizees need for their gradients,
 * registered under the backend name "wasm". Registration only fills tfjs's kernel table, so it is
 * safe before the wasm backend exists and a no-op when a kernel is already there (a later tfjs that
 * ships its own keeps it).
 */
import * as tf from '@tensorflow/tfjs-core';
import { conv2dBackpropFilterWasm } from './conv2d-backprop-filter';
import { unsortedSegmentSumWasm } from './unsorted-segment-sum';

export const WASM_EXTRA_KERNELS: readonly tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: conv2dBackpropFilterWasm as tf.KernelFunc },
  { kernelName: tf.UnsortedSegmentSum, backendName: 'wasm', kernelFunc: unsortedSegmentSumWasm as tf.KernelFunc },
];

/** Registers the kernels above that tfjs's wasm backend does not have; returns the names it registered. */
export function registerWasmKernels(): string[] {
  const added: string[] = [];
  for (const config of WASM_EXTRA_KERNELS) {
    if (tf.getKernel(config.kernelName, 'wasm')) continue;
    tf.registerKernel(config);
    added.push(config.kernelName);
  }
  return added;
}
