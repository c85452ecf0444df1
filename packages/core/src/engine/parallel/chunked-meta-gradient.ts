import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import type { Task } from '../../contracts/task';
import { UserError } from '../../errors';
import type { ModuleExport } from '../../contracts/json';
import type { NamedTensors } from '../../tensor-tree';
import type { MetaGradient, MetaGradientOptions } from '../meta-gradient';
import { PER_GROUP_TYPE } from '../per-group';
import { valueAndGradNamed } from '../tape';
import type { Carry } from '../unroll';
import {
  chunkBounds,
  CTL,
  CTL_HEADER,
  ERROR_BYTES,
  F64,
  F64_HEADER,
  F64_WORKER,
  F64_WORKER_WORDS,
  readError,
  STATUS,
  WORKER,
  WORKER_WORDS,
  weightLayout,
  type SharedBuffers,
  type WeightLayout,
  type WorkerInit,
} from './protocol';

/**
 * How a worker thread rebuilds the meta-optimizer (threads share no objects): `module` (a CommonJS module) exports
 * a function `export`, called with `args`, that returns, or resolves to, either a function
 * `(config: ComponentConfig) => MetaOptimizer` or a component registry that knows the meta-optimizer's type
 * (created with seed 0 and `baseDir`, default the working directory). Either way the worker then sets the main
 * thread's weights. The CLI's registries carry one (`ComponentRegistry.rebuild`); in code, point it at a small
 * module of your own:
 *
 * ```ts
 * // my-meta.js
 * exports.build = () => (config) => new LstmMetaOptimizer(config.options);
 * // training.workers = 2
 * new MetaTrainer(family, meta, training, seed, {}, { module: require.resolve('./my-meta'), export: 'build' });
 * ```
 */
export interface MetaOptimizerSource extends ModuleExport {
  /** `baseDir` of the create context when the export returns a registry (default: the working directory). */
  readonly baseDir?: string;
}

export interface ChunkedMetaGradientOptions {
  /** Worker threads (at least 1), each with a contiguous chunk of the coordinates. */
  readonly workers: number;
  readonly source: MetaOptimizerSource;
}

/** What a worker reported after its last unroll. */
export interface WorkerStats {
  /** Size of its wasm heap in bytes (0 on other backends): it holds that chunk's tape. */
  readonly wasmHeapBytes: number;
  readonly numTensors: number;
}

/**
 * The built worker script. Resolved through the package root, so that the sources (run by ts-jest) find it too;
 * worker threads always run the built JavaScript.
 */
export const CHUNK_WORKER_SCRIPT = path.resolve(__dirname, '../../../dist/engine/parallel/chunk-worker.js');

/** How long the main thread sleeps at most between checks of the workers' status words. */
const WAIT_SLICE_MS = 1000;

/** Where a run's parameters sit on one coordinate axis: the tensors in key order, flattened, back to back. */
interface ParamLayout {
  readonly names: readonly string[];
  readonly shapes: readonly number[][];
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
  readonly total: number;
}

function paramLayout(params: NamedTensors): ParamLayout {
  const names = Object.keys(params);
  const shapes = names.map((n) => params[n]!.shape.slice());
  const sizes = names.map((n) => params[n]!.size);
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) {
    offsets.push(total);
    total += s;
  }
  return { names, shapes, offsets, sizes, total };
}

function writeFlat(view: Float32Array, named: NamedTensors, layout: ParamLayout, what: string): void {
  layout.names.forEach((n, i) => {
    const t = named[n];
    if (!t || t.size !== layout.sizes[i]) {
      throw new Error(`${what}: expected "${n}" with ${layout.sizes[i]} entries, got ${t ? `${t.size}` : 'none'} (names: ${Object.keys(named).join(', ')})`);
    }
    view.set(t.dataSync() as Float32Array, layout.offsets[i]!);
  });
}

function readFlat(view: Float32Array, layout: ParamLayout): NamedTensors {
  const out: NamedTensors = {};
  layout.names.forEach((n, i) => {
    out[n] = tf.tensor(view.slice(layout.offsets[i]!, layout.offsets[i]! + layout.sizes[i]!), layout.shapes[i]!, 'float32');
  });
  return out;
}

/** A started set of worker threads and the memory they share with this one. */
class WorkerPool {
  readonly threads: Worker[] = [];
  private readonly ctl: Int32Array;
  private readonly f64: Float64Array;
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  private readonly weights: Float32Array;
  private readonly weightGrads: Float32Array;
  private readonly present: Int32Array;
  private readonly errors: Uint8Array;
  private readonly layout: WeightLayout;
  private commands = 0;
  private gradients = 0;
  private bounds: Array<[number, number]> = [];
  /** Threads not yet exited (counted from their 'exit' events). */
  alive = 0;
  readonly exited: Promise<void>;

  constructor(
    private readonly meta: MetaOptimizer,
    readonly workers: number,
    source: MetaOptimizerSource,
    readonly capacity: number,
  ) {
    if (!fs.existsSync(CHUNK_WORKER_SCRIPT)) {
      throw new Error(`${CHUNK_WORKER_SCRIPT} is missing: training.workers runs the built @l2l/core in its worker threads; build it first (pnpm build)`);
    }
    if (path.isAbsolute(source.module) && !fs.existsSync(source.module)) {
      throw new Error(`${source.module} is missing: training.workers loads it in each worker thread to rebuild the meta-optimizer; build it first (pnpm build)`);
    }
    this.layout = weightLayout(Object.entries(meta.variables).map(([n, v]) => [n, v.shape] as const));
    const f32 = (n: number) => new SharedArrayBuffer(4 * Math.max(n, 1));
    const buffers: SharedBuffers = {
      ctl: f32(CTL_HEADER + workers * WORKER_WORDS),
      f64: new SharedArrayBuffer(8 * (F64_HEADER + workers * F64_WORKER_WORDS)),
      params: f32(capacity),
      grads: f32(capacity),
      weights: f32(this.layout.total),
      weightGrads: f32(workers * this.layout.total),
      present: f32(workers * this.layout.names.length),
      errors: new SharedArrayBuffer(workers * ERROR_BYTES),
    };
    this.ctl = new Int32Array(buffers.ctl);
    this.f64 = new Float64Array(buffers.f64);
    this.params = new Float32Array(buffers.params);
    this.grads = new Float32Array(buffers.grads);
    this.weights = new Float32Array(buffers.weights);
    this.weightGrads = new Float32Array(buffers.weightGrads);
    this.present = new Int32Array(buffers.present);
    this.errors = new Uint8Array(buffers.errors);
    const exits: Array<Promise<void>> = [];
    for (let index = 0; index < workers; index++) {
      const init: WorkerInit = {
        index,
        workers,
        backend: tf.getBackend(),
        prod: tf.env().getBool('PROD'),
        source: { module: source.module, export: source.export, args: source.args, baseDir: source.baseDir },
        config: meta.config(),
        weights: this.layout,
        capacity,
        buffers,
      };
      const worker = new Worker(CHUNK_WORKER_SCRIPT, { workerData: init });
      // Every failure is reported through shared memory (the main thread is blocked in Atomics.wait while they
      // run); the 'error' event would otherwise crash the process once the event loop delivers it.
      worker.on('error', () => undefined);
      exits.push(new Promise<void>((resolve) => worker.once('exit', () => resolve())).then(() => void this.alive--));
      // Never keeps the process alive: all exchanges are synchronous, and dispose() terminates them.
      worker.unref();
      this.threads.push(worker);
      this.alive++;
    }
    this.exited = Promise.all(exits).then(() => undefined);
  }

  /** Blocks until every worker has loaded tfjs, its backend and the meta-optimizer. */
  waitReady(): void {
    this.waitUntil(() => this.everyWorker((b) => Atomics.load(this.ctl, b + WORKER.STATUS) === STATUS.READY), 'starting');
  }

  private everyWorker(ok: (base: number) => boolean): boolean {
    for (let i = 0; i < this.workers; i++) if (!ok(CTL_HEADER + i * WORKER_WORDS)) return false;
    return true;
  }

  /** Blocks until `done()`; throws a worker's error as soon as one fails. */
  private waitUntil(done: () => boolean, doing: string): void {
    for (;;) {
      const bell = Atomics.load(this.ctl, CTL.BELL);
      this.throwIfFailed(doing);
      if (done()) return;
      Atomics.wait(this.ctl, CTL.BELL, bell, WAIT_SLICE_MS);
    }
  }

  private throwIfFailed(doing: string): void {
    for (let i = 0; i < this.workers; i++) {
      if (Atomics.load(this.ctl, CTL_HEADER + i * WORKER_WORDS + WORKER.STATUS) !== STATUS.FAILED) continue;
      const { name, message, stack } = readError(this.errors, i);
      const chunk = this.bounds[i] ? ` (coordinates ${this.bounds[i]![0]}..${this.bounds[i]![1] - 1})` : '';
      const text = `training.workers: worker ${i + 1} of ${this.workers}${chunk} failed while ${doing}: ${message}`;
      const cause = Object.assign(new Error(message), { name, stack });
      throw name === 'UserError' ? new UserError(text, { cause }) : new Error(text, { cause });
    }
  }

  /**
   * One unroll from `carry`: the workers update their chunks, this thread computes the optimizee's loss and
   * gradient at each step; then the workers' meta-gradients are summed.
   */
  unroll(task: Task, carry: Carry, layout: ParamLayout, options: MetaGradientOptions, fresh: boolean): MetaGradient {
    const { ctl } = this;
    const T = options.length;
    if (fresh) {
      this.bounds = chunkBounds(layout.total, this.workers);
      this.bounds.forEach(([lo, hi], i) => {
        Atomics.store(ctl, CTL_HEADER + i * WORKER_WORDS + WORKER.LO, lo);
        Atomics.store(ctl, CTL_HEADER + i * WORKER_WORDS + WORKER.HI, hi);
      });
      writeFlat(this.params, carry.state.params, layout, 'parameters');
      writeFlat(this.grads, carry.grads, layout, 'gradients');
      this.f64[F64.LOSS] = carry.loss.dataSync()[0]!;
    }
    // The weights change after every Adam step: sent with every unroll (a few thousand numbers).
    this.layout.names.forEach((n, i) => this.weights.set(this.meta.variables[n]!.dataSync() as Float32Array, this.layout.offsets[i]!));
    Atomics.add(ctl, CTL.WEIGHTS_VERSION, 1);
    Atomics.store(ctl, CTL.LENGTH, T);
    Atomics.store(ctl, CTL.WEIGHTING, options.lossWeights === 'uniform' ? 1 : options.lossWeights === 'last' ? 2 : 0);
    Atomics.store(ctl, CTL.TRAINING, options.training ? 1 : 0);
    Atomics.store(ctl, CTL.FRESH, fresh ? 1 : 0);
    const every = options.checkpointEvery ?? 0;
    Atomics.store(ctl, CTL.CHECKPOINT_EVERY, every > 0 && every < T ? every : 0);
    Atomics.store(ctl, CTL.START_STEP, carry.state.step);
    const command = ++this.commands;
    Atomics.store(ctl, CTL.COMMAND, command);
    Atomics.notify(ctl, CTL.COMMAND);

    const values: number[] = [];
    let params: NamedTensors | null = null;
    let loss: tf.Scalar | null = null;
    let grads: NamedTensors | null = null;
    const release = () => tf.dispose([...Object.values(params ?? {}), ...(loss ? [loss] : []), ...Object.values(grads ?? {})]);
    try {
      for (let t = 0; t < T; t++) {
        const target = this.gradients + 1;
        this.waitUntil(() => this.everyWorker((b) => Atomics.load(ctl, b + WORKER.PARAMS) >= target), `computing step ${t + 1} of the unroll`);
        release();
        params = readFlat(this.params, layout);
        const step = carry.state.step + t + 1;
        const p = params;
        const r = tf.tidy(() => valueAndGradNamed(p, (q) => task.loss(q, task.batch(step, options.batchSeed))));
        loss = r.value;
        grads = r.grads;
        writeFlat(this.grads, grads, layout, 'gradients');
        const value = loss.dataSync()[0]!;
        this.f64[F64.LOSS] = value;
        values.push(value);
        this.gradients = target;
        Atomics.store(ctl, CTL.GRADIENTS, target);
        Atomics.notify(ctl, CTL.GRADIENTS);
      }
      this.waitUntil(() => this.everyWorker((b) => Atomics.load(ctl, b + WORKER.DONE) >= command), 'backpropagating the unroll');
    } catch (e) {
      release();
      throw e;
    }
    // Σ of the workers' meta-gradients, in float64.
    const named: NamedTensors = {};
    const W = this.layout;
    W.names.forEach((n, i) => {
      const size = W.shapes[i]!.reduce((a, b) => a * b, 1);
      let any = false;
      const sum = new Float64Array(size);
      for (let w = 0; w < this.workers; w++) {
        if (!this.present[w * W.names.length + i]) continue;
        any = true;
        const from = w * W.total + W.offsets[i]!;
        for (let j = 0; j < size; j++) sum[j]! += this.weightGrads[from + j]!;
      }
      if (any) named[n] = tf.tensor(Float32Array.from(sum), W.shapes[i] as number[], 'float32');
    });
    const weight = (t: number) => (options.lossWeights === 'uniform' || (options.lossWeights === 'last' && t === T - 1) ? 1 : 0);
    const metaLoss = tf.scalar(values.reduce((s, v, t) => s + weight(t) * v, 0));
    const losses = tf.tensor1d(values);
    const next: Carry = { state: { params: params!, slots: {}, step: carry.state.step + T }, loss: loss!, grads: grads! };
    return { metaLoss, grads: named, losses, next };
  }

  stats(): WorkerStats[] {
    return this.threads.map((_, i) => ({
      wasmHeapBytes: this.f64[F64_HEADER + i * F64_WORKER_WORDS + F64_WORKER.WASM_HEAP]!,
      numTensors: this.f64[F64_HEADER + i * F64_WORKER_WORDS + F64_WORKER.NUM_TENSORS]!,
    }));
  }

  terminate(): Promise<void> {
    for (const w of this.threads) void w.terminate();
    return this.exited;
  }
}

/**
 * `metaGradient` with the coordinates split into `workers` contiguous chunks, each run by a worker thread with
 * its own tfjs (and wasm heap, which then holds only its chunk's tape); what MetaTrainer uses when
 * `training.workers` > 0. Same result as `metaGradient` (to float32 rounding) for a coordinatewise
 * meta-optimizer and first-order meta-gradients: the optimizee's gradients g_t are then constants, the meta-loss
 * Σ w_t f(θ_t) has the gradient of Σ w_t ⟨g_t, θ_t⟩ with respect to the weights, and that sum splits over the
 * coordinates.
 *
 * The main thread owns the task and θ: per optimizee step it publishes f and ∇f (flattened, in shared memory),
 * waits for the workers' updated chunks of θ, rebuilds θ as named tensors and computes f and ∇f there; each
 * worker runs the engine's own unroll and meta-gradient on its chunk (checkpointed segments included) and
 * publishes its weight gradient, which this thread sums. Workers start on the first call (each loads the
 * meta-optimizer from `source` and the main thread's backend) and stop in `dispose` or on any error, which is
 * thrown here with the worker's message.
 *
 * The meta-optimizer's state stays in the workers between the unrolls of an episode. So the carry this returns
 * has `state.slots` = `{}` (a placeholder: the state is in the workers), and `metaGradient` continues only the
 * carry it returned last, or starts a run from a carry at step 0 (each worker then calls `init` on its chunk of
 * θ, as `startRun` did on all of it). Checkpoints (`l2l train`) are taken between epochs, where episodes start
 * afresh, so none ever holds such a carry.
 */
export class ChunkedMetaGradient {
  private pool: WorkerPool | null = null;
  /** Pools whose threads have not all exited (the current one, and stopped ones still exiting). */
  private readonly pools = new Set<WorkerPool>();
  /** The carry returned last, whose optimizer state the workers hold. */
  private last: Carry | null = null;

  constructor(
    readonly meta: MetaOptimizer,
    readonly options: ChunkedMetaGradientOptions,
  ) {
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new UserError(`training.workers must be a positive integer here, got ${options.workers}`);
    if (meta.coordinatewise !== true) {
      throw new UserError(
        `training.workers (${options.workers}) needs a coordinatewise meta-optimizer (each coordinate's update independent of the others), ` +
          `and "${meta.type}" does not declare itself one (MetaOptimizer.coordinatewise); set training.workers to 0`,
      );
    }
    // Chunks are flat runs of coordinates that know nothing of parameter groups; a per-group kernel does. Splitting
    // here would need the protocol to carry each chunk's runs per group and the worker's exchange task to cut its
    // chunk into per-group pieces: left undone while the fused path (the default) already threads per group.
    if (meta.type === PER_GROUP_TYPE) {
      throw new UserError(
        `training.workers (${options.workers}) on the tfjs tape does not split per-group meta-optimizers: use their fused kernels ` +
          '(training.kernel "auto" or "fused", whose threads work per group, where every group has a meta-optimizer with one: not a baseline group) or set training.workers to 0',
      );
    }
  }

  /** The meta-gradient of one unroll from `carry`, as `metaGradient(task, meta.optimizer(), carry, meta.variables, options)`. */
  metaGradient(task: Task, carry: Carry, options: MetaGradientOptions): MetaGradient {
    const { workers } = this.options;
    if (options.secondDerivatives) {
      throw new UserError(`training.workers (${workers}) needs first-order meta-gradients: set training.secondDerivatives to false, or training.workers to 0`);
    }
    if (!(options.length >= 1)) throw new Error(`an unroll needs at least one step, got ${options.length}`);
    const layout = paramLayout(carry.state.params);
    if (workers > layout.total) {
      throw new UserError(`training.workers (${workers}) must not exceed the number of coordinates of the optimizee (${layout.total})`);
    }
    const fresh = carry !== this.last;
    if (fresh && carry.state.step !== 0) {
      throw new Error(
        `ChunkedMetaGradient continues only the carry it returned last (the workers hold its optimizer state) or starts from one at step 0; got one at step ${carry.state.step}`,
      );
    }
    this.last = null;
    if (this.pool && fresh && this.pool.capacity < layout.total) this.stop();
    try {
      if (!this.pool) {
        const pool = new WorkerPool(this.meta, workers, this.options.source, layout.total);
        this.pool = pool;
        this.pools.add(pool);
        void pool.exited.then(() => this.pools.delete(pool));
        pool.waitReady();
      }
      const result = this.pool.unroll(task, carry, layout, options, fresh);
      this.last = result.next;
      return result;
    } catch (e) {
      this.stop();
      throw e;
    }
  }

  /** Worker threads not yet exited (a thread stops counting once its 'exit' event has been delivered). */
  get threads(): number {
    let n = 0;
    for (const p of this.pools) n += p.alive;
    return n;
  }

  /** Each worker's memory after its last unroll (empty before the first). */
  workerStats(): WorkerStats[] {
    return this.pool?.stats() ?? [];
  }

  private stop(): void {
    void this.pool?.terminate();
    this.pool = null;
    this.last = null;
  }

  /** Terminates the workers; resolves once every thread has exited. A later `metaGradient` starts new ones. */
  dispose(): Promise<void> {
    this.stop();
    return Promise.all([...this.pools].map((p) => p.exited)).then(() => undefined);
  }
}
