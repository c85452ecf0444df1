import * as tf from '@tensorflow/tfjs-core';
import type { Optimizer } from '../contracts/optimizer';
import type { Task } from '../contracts/task';
import { UserError } from '../errors';
import { countCoordinates, disposeTree, treeTensors, type TensorTree } from '../tensor-tree';
import { metaGradient } from './meta-gradient';
import type { Carry, UnrollOptions } from './unroll';

/**
 * The most memory the tfjs wasm backend can hold: its heap is a 32-bit WebAssembly memory of at most 4 GiB, and
 * going past it fails as `RuntimeError: memory access out of bounds`, not as a clean out-of-memory error.
 */
export const WASM_MEMORY_LIMIT = 4 * 2 ** 30;

/**
 * Share of that limit an unroll's estimated peak may use: the heap also holds the allocator's overhead and
 * fragmentation, and kernels' scratch space, which tensor byte counts do not see (bench/results.md: at 0.85
 * the largest MNIST-MLP unroll that passes the check also ran).
 */
export const MEMORY_HEADROOM = 0.85;

/** The hard memory cap of the backend in use, in bytes, or null when there is none to check (cpu, tensorflow). */
export function backendMemoryLimit(): number | null {
  return tf.getBackend() === 'wasm' ? WASM_MEMORY_LIMIT : null;
}

interface EngineBytes {
  numBytes: number;
}

/**
 * Runs `fn` and returns the largest number of tensor bytes alive at any moment meanwhile, above those alive
 * before, read from tfjs's own count (`tf.memory().numBytes`): every allocation updates it, so a property
 * setter on the engine's state sees the peak, the backward pass included, without profiling every kernel.
 */
export function peakTensorBytes<T>(fn: () => T): { result: T; peakBytes: number } {
  const state = (tf.engine() as unknown as { state: EngineBytes }).state;
  const start = state.numBytes;
  if (typeof start !== 'number') throw new Error('peakTensorBytes: this tfjs version keeps no byte count on its engine state');
  let value = start;
  let peak = start;
  Object.defineProperty(state, 'numBytes', {
    configurable: true,
    enumerable: true,
    get: () => value,
    set: (v: number) => {
      value = v;
      if (v > peak) peak = v;
    },
  });
  try {
    const result = fn();
    return { result, peakBytes: peak - start };
  } finally {
    delete (state as Partial<EngineBytes>).numBytes;
    state.numBytes = value;
  }
}

/** What one taped unroll costs in tensor memory, measured on the task itself; see `estimateUnrollMemory`. */
export interface UnrollMemoryEstimate {
  /** Tensor bytes alive before the unroll (the carry, the weights, data held as tensors). */
  readonly baseBytes: number;
  /** Peak bytes a taped unroll adds per step (forward tape and backward gradients). */
  readonly bytesPerStep: number;
  /** Peak bytes a taped unroll adds regardless of its length. */
  readonly fixedBytes: number;
  /** Bytes of one carry (a boundary kept by gradient checkpointing). */
  readonly carryBytes: number;
  readonly coordinates: number;
}

/**
 * Measures the peak tensor memory of the meta-gradient of taped unrolls of 1 and 2 steps from `carry` (their
 * difference is the cost of a step) with every loss weighted, the larger tape. Leaves `carry` and the weights as
 * they were; costs three optimizee steps with their meta-gradient.
 */
export function estimateUnrollMemory(
  task: Task,
  optimizer: Optimizer,
  carry: Carry,
  variables: Readonly<Record<string, tf.Variable>>,
  options: UnrollOptions,
): UnrollMemoryEstimate {
  const baseBytes = tf.memory().numBytes;
  const probe = (length: number) => {
    const { result, peakBytes } = peakTensorBytes(() => metaGradient(task, optimizer, carry, variables, { ...options, length, lossWeights: 'uniform' }));
    disposeTree(result as unknown as TensorTree, carry as unknown as TensorTree);
    return peakBytes;
  };
  const one = probe(1);
  const two = probe(2);
  const bytesPerStep = Math.max(two - one, 0);
  const carryBytes = treeTensors(carry as unknown as TensorTree).reduce((s, t) => s + t.size * 4, 0);
  return { baseBytes, bytesPerStep, fixedBytes: Math.max(one - bytesPerStep, 0), carryBytes, coordinates: countCoordinates(carry.state.params) };
}

/**
 * The estimate for one worker thread of `training.workers` that holds `coordinates` of them (its chunk): the
 * tape, the optimizer state and the boundary carries of a coordinatewise optimizer grow with the coordinates, so
 * every per-run figure is scaled by the chunk's share; the base is the chunk's carry (the task and its data stay in
 * the main thread, which keeps no tape).
 */
export function chunkMemoryEstimate(e: UnrollMemoryEstimate, coordinates: number): UnrollMemoryEstimate {
  const share = e.coordinates > 0 ? coordinates / e.coordinates : 1;
  return {
    baseBytes: e.carryBytes * share,
    bytesPerStep: e.bytesPerStep * share,
    fixedBytes: e.fixedBytes * share,
    carryBytes: e.carryBytes * share,
    coordinates,
  };
}

/**
 * Peak tensor bytes of one meta-gradient over `length` steps: the taped steps (all of them, or one segment of
 * `checkpointEvery`) plus the carries kept at the other segment boundaries.
 */
export function unrollPeakBytes(e: UnrollMemoryEstimate, length: number, checkpointEvery: number | null | undefined): number {
  const every = checkpointEvery && checkpointEvery < length ? checkpointEvery : length;
  const boundaries = Math.ceil(length / every) - 1;
  return e.baseBytes + e.fixedBytes + every * e.bytesPerStep + boundaries * e.carryBytes;
}

function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
}

/**
 * Throws a UserError, before any meta-training, when the estimated peak of an unroll of `length` steps does not
 * fit in `limit` bytes (times MEMORY_HEADROOM), saying what would make it fit.
 */
export function checkUnrollMemory(
  e: UnrollMemoryEstimate,
  length: number,
  checkpointEvery: number | null | undefined,
  limit: number,
  backend = tf.getBackend(),
  /** training.workers when it is in use or could be (a coordinatewise meta-optimizer, first order): the message then says so. */
  workers?: number,
): void {
  const usable = limit * MEMORY_HEADROOM;
  const peak = unrollPeakBytes(e, length, checkpointEvery);
  if (peak <= usable) return;
  const perStep = e.bytesPerStep;
  const room = usable - e.baseBytes - e.fixedBytes;
  // The longest taped stretch that fits, leaving room for the boundary carries of a checkpointed unroll.
  const maxPlain = perStep > 0 ? Math.floor(room / perStep) : 0;
  let maxSegment = 0;
  for (let s = Math.min(maxPlain, length - 1); s >= 1; s--) {
    if (unrollPeakBytes(e, length, s) <= usable) {
      maxSegment = s;
      break;
    }
  }
  const segments = checkpointEvery && checkpointEvery < length ? `segments of ${checkpointEvery} steps (training.checkpointEvery)` : `${length} steps (training.unroll)`;
  const fixes: string[] = [];
  if (maxSegment >= 1) fixes.push(`set training.checkpointEvery to ${maxSegment} or less (the unroll is recomputed in segments and the tape holds one, for up to a third more time)`);
  if (maxPlain >= 1) fixes.push(`or reduce training.unroll to ${maxPlain} or less`);
  if (workers !== undefined) {
    fixes.push(workers > 0 ? 'or raise training.workers (each worker holds a smaller chunk)' : 'or set training.workers to 2 or more (each worker thread holds the tape of its chunk of the coordinates)');
  }
  fixes.push('or use a smaller optimizee (fewer coordinates)');
  if (backend === 'wasm') fixes.push('or run on the cpu backend (no such cap, but several times slower)');
  const where = workers ? ` in each of the ${workers} worker threads (training.workers)` : '';
  throw new UserError(
    `meta-training would run out of memory: the meta-gradient of an unroll of ${length} steps over ${e.coordinates.toLocaleString('en-US')} coordinates${where} ` +
      `needs about ${formatBytes(peak)} of tensors (${formatBytes(perStep)} per taped step, ${segments}), more than ` +
      `${Math.round(MEMORY_HEADROOM * 100)} % of the ${backend} backend's ${formatBytes(limit)}; ${fixes.join(', ')}`,
  );
}
