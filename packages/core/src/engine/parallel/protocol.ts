/*
 * What the main thread and the chunk workers of `ChunkedMetaGradient` share: the layout of their shared memory
 * and the start-up data of a worker. Plain data only (threads share no objects). Imported by both sides, so it
 * must not load tfjs.
 */
import type { ComponentConfig, JsonValue } from '../../contracts/json';

/** Where a worker thread gets the meta-optimizer from; see `MetaOptimizerSource` in chunked-meta-gradient.ts. */
export interface MetaOptimizerSourceData {
  readonly module: string;
  readonly export: string;
  readonly args?: JsonValue;
  readonly baseDir?: string;
}

/** Int32 control words (`ctl`), written with Atomics. */
export const CTL = {
  /** Main: commands issued so far; workers wait on it. */
  COMMAND: 0,
  /** Workers: incremented (and notified) at every change the main thread may be waiting for. */
  BELL: 1,
  /** Main: optimizee gradients published so far (one per optimizee step of an unroll). */
  GRADIENTS: 2,
  // The current unroll command.
  LENGTH: 3,
  /** 0: no loss counts, 1: every step's (uniform), 2: the last step's. */
  WEIGHTING: 4,
  TRAINING: 5,
  /** 1: an episode starts here: each worker initialises its chunk's state from θ, g and the loss published with the command. */
  FRESH: 6,
  CHECKPOINT_EVERY: 7,
  /** Main: bumped whenever it writes the weights; a worker sets its weights when its copy is older. */
  WEIGHTS_VERSION: 8,
  /** Optimizer step at the start of the unroll (a check that both sides continue the same run). */
  START_STEP: 9,
} as const;

/** Control words before the per-worker ones. */
export const CTL_HEADER = 16;
/** Control words per worker, from `CTL_HEADER + index · WORKER_WORDS`. */
export const WORKER_WORDS = 8;
export const WORKER = {
  STATUS: 0,
  /** Parameter chunks this worker has published so far. */
  PARAMS: 1,
  /** The last command this worker completed. */
  DONE: 2,
  /** Its chunk of coordinates, [LO, HI), set by main with a fresh command. */
  LO: 3,
  HI: 4,
} as const;
export const STATUS = { STARTING: 0, READY: 1, FAILED: 2 } as const;

/** Float64 words: the loss published with the gradient, then per worker its memory figures. */
export const F64 = { LOSS: 0 } as const;
export const F64_HEADER = 4;
export const F64_WORKER_WORDS = 4;
export const F64_WORKER = {
  /** Size of its wasm heap (bytes; 0 on other backends). */
  WASM_HEAP: 0,
  /** Its `tf.memory().numTensors` after its last unroll. */
  NUM_TENSORS: 1,
} as const;

/** Bytes of a worker's error report (name, message and stack, cut to fit). */
export const ERROR_BYTES = 16384;

export interface SharedBuffers {
  /** Int32: CTL words, then WORKER_WORDS per worker. */
  readonly ctl: SharedArrayBuffer;
  /** Float64: F64 words, then F64_WORKER_WORDS per worker. */
  readonly f64: SharedArrayBuffer;
  /** Float32 [capacity]: the optimizee's parameters, flattened (each worker writes its chunk). */
  readonly params: SharedArrayBuffer;
  /** Float32 [capacity]: the optimizee's gradient, flattened (main writes it). */
  readonly grads: SharedArrayBuffer;
  /** Float32: the meta-optimizer's weights, flattened in `WeightLayout` order. */
  readonly weights: SharedArrayBuffer;
  /** Float32 [workers × weight entries]: each worker's meta-gradient. */
  readonly weightGrads: SharedArrayBuffer;
  /** Int32 [workers × weights]: 1 where the worker's meta-gradient has that weight. */
  readonly present: SharedArrayBuffer;
  /** Uint8 [workers × ERROR_BYTES]: a failed worker's error. */
  readonly errors: SharedArrayBuffer;
}

/** The meta-optimizer's weights, flattened back to back in `names` order. */
export interface WeightLayout {
  readonly names: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  readonly offsets: readonly number[];
  readonly total: number;
}

export function weightLayout(shapes: ReadonlyArray<readonly [string, readonly number[]]>): WeightLayout {
  const offsets: number[] = [];
  let total = 0;
  for (const [, shape] of shapes) {
    offsets.push(total);
    total += shape.reduce((a, b) => a * b, 1);
  }
  return { names: shapes.map(([n]) => n), shapes: shapes.map(([, s]) => [...s]), offsets, total };
}

/** What a worker is started with (its `workerData`). */
export interface WorkerInit {
  readonly index: number;
  readonly workers: number;
  /** tfjs's name of the main thread's backend. */
  readonly backend: string;
  /** The main thread's tfjs PROD flag (warnings off). */
  readonly prod: boolean;
  readonly source: MetaOptimizerSourceData;
  readonly config: ComponentConfig;
  readonly weights: WeightLayout;
  /** Float32 entries of the params and grads buffers. */
  readonly capacity: number;
  readonly buffers: SharedBuffers;
}

/** The contiguous chunks `[lo, hi)` of `n` coordinates over `workers` workers (sizes differ by at most one). */
export function chunkBounds(n: number, workers: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < workers; i++) out.push([Math.floor((i * n) / workers), Math.floor(((i + 1) * n) / workers)]);
  return out;
}

const SEP = '\u0000';

/** Writes an error into a worker's error slot (cut to fit). */
export function writeError(errors: Uint8Array, index: number, e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  const text = [err.name || 'Error', err.message, err.stack ?? ''].join(SEP);
  const slot = errors.subarray(index * ERROR_BYTES, (index + 1) * ERROR_BYTES);
  slot.fill(0);
  new TextEncoder().encodeInto(text, slot);
}

/** Reads a worker's error slot back. */
export function readError(errors: Uint8Array, index: number): { name: string; message: string; stack: string } {
  const slot = errors.slice(index * ERROR_BYTES, (index + 1) * ERROR_BYTES);
  let end = slot.length;
  while (end > 0 && slot[end - 1] === 0) end--;
  const [name, message, stack] = new TextDecoder().decode(slot.subarray(0, end)).split(SEP);
  return { name: name || 'Error', message: message || '(no message)', stack: stack ?? '' };
}
