import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { HOST_BASE, KernelMemory, kernelModule, type KernelVariant } from './wasm-module';

/*
 * Kernel instances and their threads. An instance is one shared memory with the module instantiated on it in the
 * main thread and, when a run asks for threads, in worker threads too. Instances are pooled: a run takes one,
 * resets its allocator and gives it back on dispose, so meta-training does not create a memory per episode.
 *
 * Control block (Int32Array over a SharedArrayBuffer), one exchange per call, the main thread blocked meanwhile:
 *   CMD    sequence number of the latest call (workers wait on it)
 *   DONE   number of worker calls finished
 *   OP     what to run: CONFIGURE, FORWARD, BACKWARD, EXIT
 *   ERROR  set by a worker that failed (its message is posted)
 *   READY  number of workers that have instantiated the module
 *   NEXT   the next chunk of tiles to claim; CHUNKS how many there are (tile-threads.ts)
 *   TILES, CHUNK_TILES   the run's tiles and the tiles per chunk
 *   ACC, ACC_STRIDE      the backward pass's first chunk accumulator and the bytes from one to the next
 *   ARGS.. the call's integer arguments; FARGS.. its float arguments (a Float32Array over the same buffer)
 *   per worker w, at WORKER + w·WORKER_STRIDE: its scratch pointers cur (forward) and scr (backward)
 */
export const CTRL = {
  CMD: 0, DONE: 1, OP: 2, ERROR: 3, READY: 4, NEXT: 5, CHUNKS: 6, TILES: 7, CHUNK_TILES: 8, ACC: 9, ACC_STRIDE: 10,
  ARGS: 11, FARGS: 26, WORKER: 32, WORKER_STRIDE: 2,
} as const;
export const OPS = { CONFIGURE: 1, FORWARD: 2, BACKWARD: 3, EXIT: 4 } as const;
/** Most worker threads one instance runs. */
export const MAX_WORKERS = 63;

/** The worker script: compiled JavaScript, also when the package runs from source under jest. */
export const KERNEL_WORKER_SCRIPT = path.resolve(__dirname, '../../dist/kernels/kernel-worker.js');

/** The exports of the lstm-stack build (assembly/lstm-stack.ts). */
export interface LstmStackExports {
  configure(
    f: number, e: number, h: number, l: number, feat: number, outTanh: number, softmax: number, params: number,
    k: number, beta1: number, beta2: number, eps: number,
  ): number;
  recordRows(): number;
  stateRows(): number;
  weightOffset(l: number): number;
  packWeights(raw: number, w: number, total: number): void;
  scratchBytes(u: number): number;
  storeTileBytes(cap: number): number;
  forwardStep(
    t0: number, t1: number, g: number, upd: number, state: number, moments: number, cur: number, xs: number, w: number, c1: number, d2: number,
    store: number, step: number, cap: number, scale: number,
  ): void;
  backward(
    t0: number, t1: number, nt: number, u: number, init: number, xs: number, d: number, w: number, scr: number, acc: number,
    store: number, cap: number, scale: number,
  ): void;
  reduceAcc(acc: number, out: number, n: number): void;
}

export function instantiate(mod: WebAssembly.Module, memory: WebAssembly.Memory): LstmStackExports {
  const instance = new WebAssembly.Instance(mod, {
    env: {
      memory,
      abort: () => {
        throw new Error('fused kernel: abort');
      },
    },
  });
  return instance.exports as unknown as LstmStackExports;
}

/** Runs `chunk(c)` for each chunk c of the current call this thread claims, until none is left. */
export function claimChunks(i32: Int32Array, chunk: (c: number) => void): void {
  const count = i32[CTRL.CHUNKS]!;
  for (let c = Atomics.add(i32, CTRL.NEXT, 1); c < count; c = Atomics.add(i32, CTRL.NEXT, 1)) chunk(c);
}

/** Worker threads running the same module on an instance's memory. */
class Workers {
  readonly ctrl = new SharedArrayBuffer(4 * (CTRL.WORKER + CTRL.WORKER_STRIDE * MAX_WORKERS));
  readonly i32 = new Int32Array(this.ctrl);
  readonly f32 = new Float32Array(this.ctrl);
  private readonly threads: Worker[] = [];
  private seq = 0;
  private readonly errors: string[] = [];

  constructor(
    readonly count: number,
    mod: WebAssembly.Module,
    memory: WebAssembly.Memory,
    /** The build's name (kernel-worker.ts calls its exports). */
    source: string,
  ) {
    // At once, not after the 60 s wait below: a worker whose script is missing never reports.
    if (!fs.existsSync(KERNEL_WORKER_SCRIPT)) {
      throw new Error(`${KERNEL_WORKER_SCRIPT} is missing: the fused kernel's threads run the built @l2l/meta-optimizers; build it first (pnpm build)`);
    }
    for (let w = 0; w < count; w++) {
      const worker = new Worker(KERNEL_WORKER_SCRIPT, { workerData: { module: mod, memory, ctrl: this.ctrl, index: w, source } });
      worker.on('message', (m: { error?: string }) => {
        if (m.error) this.errors.push(m.error);
      });
      // Failures are reported through the control block (the main thread is blocked while workers run).
      worker.on('error', (e) => this.errors.push(String(e)));
      worker.unref();
      this.threads.push(worker);
    }
    // Wait for every worker to instantiate the module (a worker whose script fails to load never counts).
    const started = Date.now();
    for (;;) {
      const ready = Atomics.load(this.i32, CTRL.READY);
      if (ready >= count) break;
      if (Date.now() - started > 60_000) {
        this.terminate();
        throw new Error(`fused kernel: ${count - ready} of ${count} worker threads did not start within 60 s (${KERNEL_WORKER_SCRIPT})`);
      }
      Atomics.wait(this.i32, CTRL.READY, ready, 1000);
    }
    if (Atomics.load(this.i32, CTRL.ERROR) !== 0) {
      this.terminate();
      throw new Error('fused kernel: a worker thread could not instantiate the kernel');
    }
  }

  /**
   * Runs `op` on every worker with `count` chunks to claim (claimChunks), `chunk` on this thread for the chunks it
   * claims, and waits for all: whichever thread is free takes the next chunk.
   */
  callChunks(op: number, count: number, chunk: (c: number) => void): void {
    Atomics.store(this.i32, CTRL.NEXT, 0);
    this.i32[CTRL.CHUNKS] = count;
    this.call(op, () => claimChunks(this.i32, chunk));
  }

  /** Runs `op` on every worker (after the caller filled the arguments), `during` meanwhile on this thread, and waits for all. */
  call(op: number, during: () => void): void {
    const { i32 } = this;
    i32[CTRL.OP] = op;
    const target = Atomics.load(i32, CTRL.DONE) + this.count;
    Atomics.store(i32, CTRL.CMD, ++this.seq);
    Atomics.notify(i32, CTRL.CMD);
    let failure: unknown;
    try {
      during();
    } catch (e) {
      failure = e;
    }
    const started = Date.now();
    for (;;) {
      const done = Atomics.load(i32, CTRL.DONE);
      if (done >= target) break;
      if (Atomics.load(i32, CTRL.ERROR) !== 0) break;
      Atomics.wait(i32, CTRL.DONE, done, 1000);
      // A worker that died without reporting (killed, out of memory) would otherwise block forever.
      if (Date.now() - started > 600_000) throw new Error('fused kernel: worker threads did not answer within 10 minutes');
    }
    if (failure) throw failure;
    if (Atomics.load(i32, CTRL.ERROR) !== 0) {
      throw new Error(`fused kernel: a worker thread failed${this.errors.length ? `: ${this.errors.join('; ')}` : ''}`);
    }
  }

  terminate(): void {
    this.i32[CTRL.OP] = OPS.EXIT;
    Atomics.store(this.i32, CTRL.CMD, ++this.seq);
    Atomics.notify(this.i32, CTRL.CMD);
    for (const t of this.threads) void t.terminate();
  }
}

/** A memory, the module instantiated on it here, and (once asked for) worker threads. */
export class KernelInstance {
  readonly mem = new KernelMemory();
  readonly exports: LstmStackExports;
  private workerSet: Workers | null = null;

  constructor(
    readonly source: string,
    readonly variant: KernelVariant,
  ) {
    this.exports = instantiate(kernelModule(source, variant), this.mem.memory);
    if (this.mem.bytes < HOST_BASE) throw new Error('fused kernel: the module\'s constants do not fit below the host area');
  }

  /** Worker threads, `count` of them (started, or restarted with another count, on demand). */
  workers(count: number): Workers {
    if (count > MAX_WORKERS) throw new RangeError(`fused kernel: at most ${MAX_WORKERS + 1} threads`);
    if (this.workerSet && this.workerSet.count !== count) {
      this.workerSet.terminate();
      this.workerSet = null;
    }
    if (!this.workerSet) this.workerSet = new Workers(count, kernelModule(this.source, this.variant), this.mem.memory, this.source);
    return this.workerSet;
  }

  terminate(): void {
    this.workerSet?.terminate();
    this.workerSet = null;
  }
}

const free = new Map<string, KernelInstance[]>();
const live = new Set<KernelInstance>();

/** Bytes of memory held by the kernel instances alive (pooled or in use): what a leak check watches. */
export function kernelMemoryBytes(): number {
  let bytes = 0;
  for (const inst of live) bytes += inst.mem.bytes;
  return bytes;
}

/** An instance of `source` for a run: a pooled one, or a new one. Give it back with `releaseInstance`. */
export function acquireInstance(source: string, variant: KernelVariant): KernelInstance {
  const list = free.get(`${source}.${variant}`);
  let inst = list?.pop();
  if (!inst) {
    inst = new KernelInstance(source, variant);
    live.add(inst);
  }
  inst.mem.reset();
  return inst;
}

/** Returns an instance to the pool (at most two are kept per build; others are dropped). */
export function releaseInstance(inst: KernelInstance): void {
  const key = `${inst.source}.${inst.variant}`;
  const list = free.get(key) ?? [];
  free.set(key, list);
  if (list.length < 2) list.push(inst);
  else {
    inst.terminate();
    live.delete(inst);
  }
}
