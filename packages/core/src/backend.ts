import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's CommonJS build registers no gradients (nor chained ops); this bundle of its own registrations does,
// into tfjs-core's global registry, without the whole @tensorflow/tfjs (scripts/vendor-gradients.mjs).
import '../vendor/register-gradients.js';
// A backend is there before `useBackend` chooses one (as @tensorflow/tfjs gave): tf.ready() works on import.
import '@tensorflow/tfjs-backend-cpu';
import { UserError } from './errors';
import { registerWasmKernels } from './wasm-kernels';
import { NoWebGpuAdapter, registerWebGpuKernels, setUpWebGpu, watchWebGpuDevice, webGpuDevice } from './webgpu';

export type BackendChoice = 'auto' | 'wasm' | 'cpu' | 'tensorflow' | 'webgpu';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'cpu', 'tensorflow', 'webgpu'];

export interface BackendInfo {
  /** What was asked for. */
  readonly choice: BackendChoice;
  /** tfjs's name of the backend now in use (`wasm`, `cpu`, `tensorflow`, `webgpu`). */
  readonly name: string;
  /** The npm package that provides it. */
  readonly package: string;
  readonly tfjsVersion: string;
  /** webgpu: the adapter, and whether it is a software device. */
  readonly device?: { readonly description: string; readonly software: boolean };
}

/** Loads a module by name; injectable so tests can simulate packages that are (not) installed. */
export type ModuleLoader = (id: string) => unknown;

interface Candidate {
  name: string;
  packages: string[];
  install: string;
}

const CANDIDATES: Record<Exclude<BackendChoice, 'auto'>, Candidate> = {
  // tfjs-node-gpu first: a user who installed it wants the GPU.
  tensorflow: {
    name: 'tensorflow',
    packages: ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'],
    install: 'npm install @tensorflow/tfjs-node (or @tensorflow/tfjs-node-gpu for CUDA), at the version of @tensorflow/tfjs-core in use',
  },
  wasm: { name: 'wasm', packages: ['@tensorflow/tfjs-backend-wasm'], install: 'npm install @tensorflow/tfjs-backend-wasm' },
  cpu: { name: 'cpu', packages: ['@tensorflow/tfjs-backend-cpu'], install: 'npm install @tensorflow/tfjs-backend-cpu' },
  // Never chosen by auto: it reads tensors only asynchronously, and on a software device it is slow.
  webgpu: {
    name: 'webgpu',
    packages: ['@tensorflow/tfjs-backend-webgpu'],
    install: `npm install webgpu @tensorflow/tfjs-backend-webgpu@${tf.version_core} (Node 20.19 or later)`,
  },
};

/** Why a candidate did not load; `installed` when its packages are there and something else failed (no GPU adapter). */
type Failure = { error: string; installed?: boolean };

async function tryCandidate(c: Candidate, load: ModuleLoader): Promise<{ pkg: string } | Failure> {
  const failures: string[] = [];
  for (const pkg of c.packages) {
    if (c.name === 'webgpu') {
      // navigator.gpu must be there when tfjs's webgpu backend is imported: it registers only then.
      try {
        await setUpWebGpu(load);
      } catch (e) {
        if (e instanceof NoWebGpuAdapter) return { error: e.message, installed: true };
        failures.push((e as Error).message);
        continue;
      }
    }
    try {
      load(pkg);
    } catch (e) {
      failures.push(`${pkg}: ${((e as Error).message ?? String(e)).split('\n')[0]}`);
      continue;
    }
    // Gradient kernels tfjs's wasm backend lacks or gets wrong; after the package's own registrations, which they replace.
    if (c.name === 'wasm') registerWasmKernels();
    if (c.name === 'webgpu') registerWebGpuKernels();
    if (!tf.findBackendFactory(c.name)) {
      failures.push(`${pkg} loaded but registered no "${c.name}" backend with this copy of @tensorflow/tfjs-core (two copies installed? versions must match ${tf.version_core})`);
      continue;
    }
    let ok = false;
    try {
      ok = await tf.setBackend(c.name);
      await tf.ready();
    } catch (e) {
      failures.push(`${pkg}: backend failed to initialise: ${(e as Error).message}`);
      continue;
    }
    if (ok && tf.getBackend() === c.name) {
      if (c.name === 'webgpu') watchWebGpuDevice(tf.backend() as unknown as Parameters<typeof watchWebGpuDevice>[0]);
      return { pkg };
    }
    failures.push(`${pkg}: backend failed to initialise`);
  }
  return { error: failures.join('; ') };
}

/**
 * Selects the tfjs backend: `tensorflow` (tfjs-node-gpu or tfjs-node, when the user has one), `wasm`,
 * `cpu`, or `auto` (the first of those that loads). A backend that cannot load is a `UserError` that says
 * what to install.
 */
export async function useBackend(choice: BackendChoice = 'auto', load: ModuleLoader = require): Promise<BackendInfo> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`backend must be one of ${BACKEND_CHOICES.join(', ')}, got ${JSON.stringify(choice)}`);
  }
  const order: Array<Exclude<BackendChoice, 'auto'>> = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  const errors: string[] = [];
  for (const name of order) {
    const c = CANDIDATES[name];
    const result = await tryCandidate(c, load);
    if ('pkg' in result) {
      const device = c.name === 'webgpu' ? webGpuDevice() : undefined;
      return { choice, name: c.name, package: result.pkg, tfjsVersion: tf.version_core, ...(device && { device: { description: device.description, software: device.software } }) };
    }
    errors.push(`${name}: ${result.error}`);
    if (choice !== 'auto') {
      throw new UserError(`backend "${name}" cannot load (${result.error})${result.installed ? '' : `; install it with: ${c.install}`}`);
    }
  }
  throw new UserError(`no tfjs backend could load (${errors.join('; ')}); install one with: ${CANDIDATES.wasm.install}`);
}

/** One line for logs: `backend: wasm (@tensorflow/tfjs-backend-wasm, tfjs-core 4.22.0)`. */
export function describeBackend(info: BackendInfo): string {
  const device = info.device ? `; ${info.device.software ? 'software device (no GPU adapter found): ' : 'device: '}${info.device.description}` : '';
  return `backend: ${info.name} (${info.package}, tfjs-core ${info.tfjsVersion}${info.choice === 'auto' ? ', chosen by auto' : ''}${device})`;
}

/**
 * Whether the backend in use reads tensors synchronously (`dataSync`). tfjs's webgpu backend in Node cannot
 * (its synchronous read goes through a canvas): code that must run there reads with `await tensor.data()`.
 */
export function readsSynchronously(): boolean {
  return tf.getBackend() !== 'webgpu';
}
