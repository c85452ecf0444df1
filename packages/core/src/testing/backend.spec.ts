import * as tf from '@tensorflow/tfjs-core';
import { describeBackend, isUserError, useBackend, type BackendChoice, type ModuleLoader } from '../index';

/** A loader that says the given packages are not installed and loads everything else. */
const without = (...missing: string[]): ModuleLoader => (id) => {
  if (missing.includes(id)) throw new Error(`Cannot find module '${id}'`);
  return require(id);
};

describe('useBackend', () => {
  it.each(['cpu', 'wasm'] as const)('loads %s and makes it the tfjs backend', async (choice) => {
    const info = await useBackend(choice);
    expect(info).toMatchObject({ choice, name: choice, package: `@tensorflow/tfjs-backend-${choice}`, tfjsVersion: tf.version_core });
    expect(tf.getBackend()).toBe(choice);
    // It computes.
    expect(Array.from(tf.tidy(() => tf.add(tf.tensor1d([1, 2]), 1)).dataSync())).toEqual([2, 3]);
    expect(describeBackend(info)).toBe(`backend: ${choice} (@tensorflow/tfjs-backend-${choice}, tfjs-core ${tf.version_core})`);
  });

  it('fails "tensorflow" with a UserError that says to install @tensorflow/tfjs-node', async () => {
    const e = await useBackend('tensorflow').catch((x) => x);
    expect(isUserError(e)).toBe(true);
    expect(e.message).toMatch(/^backend "tensorflow" cannot load/);
    expect(e.message).toMatch(/npm install @tensorflow\/tfjs-node/);
  });

  it('"auto" falls back to wasm when tfjs-node is missing', async () => {
    await useBackend('cpu');
    const info = await useBackend('auto', without('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'));
    expect(info).toMatchObject({ choice: 'auto', name: 'wasm', package: '@tensorflow/tfjs-backend-wasm' });
    expect(tf.getBackend()).toBe('wasm');
    expect(describeBackend(info)).toMatch(/chosen by auto/);
  });

  it('"auto" falls back to cpu when wasm is missing too', async () => {
    // Only the cpu package "is installed".
    const loader: ModuleLoader = (id) => {
      if (id !== '@tensorflow/tfjs-backend-cpu') throw new Error(`Cannot find module '${id}'`);
      return require(id);
    };
    const info = await useBackend('auto', loader);
    expect(info).toMatchObject({ choice: 'auto', name: 'cpu' });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('"auto" with nothing installed is a UserError listing every attempt', async () => {
    const e = await useBackend('auto', (id) => {
      throw new Error(`Cannot find module '${id}'`);
    }).catch((x) => x);
    expect(isUserError(e)).toBe(true);
    expect(e.message).toMatch(/no tfjs backend could load/);
    expect(e.message).toMatch(/tensorflow: .*wasm: .*cpu: /);
  });

  it('fails "webgpu" without Dawn with a UserError that says what to install', async () => {
    const e = await useBackend('webgpu', without('webgpu')).catch((x) => x);
    expect(isUserError(e)).toBe(true);
    expect(e.message).toBe(
      `backend "webgpu" cannot load (webgpu (Dawn's Node bindings): Cannot find module 'webgpu'); install it with: npm install webgpu @tensorflow/tfjs-backend-webgpu@${tf.version_core} (Node 20.19 or later)`,
    );
  });

  it('rejects a bad choice', async () => {
    const e = await useBackend('webgl' as BackendChoice).catch((x) => x);
    expect(isUserError(e)).toBe(true);
    expect(e.message).toBe('backend must be one of auto, wasm, cpu, tensorflow, webgpu, got "webgl"');
  });
});
