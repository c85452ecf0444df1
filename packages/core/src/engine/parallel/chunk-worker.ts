/*
 * A worker thread of `ChunkedMetaGradient` (see chunked-meta-gradient.ts): it holds one contiguous chunk of the
 * optimizee's coordinates, as one flat tensor, with the meta-optimizer's state for them, and computes its share
 * of each unroll's meta-gradient. Run as a script (`new Worker(file, { workerData })`), never imported.
 *
 * Per unroll it runs the engine's own `metaGradient` on an `ExchangeTask`: a task whose "loss" at step s is
 * published to the main thread as this chunk of θ_s, and answered with the main thread's loss f(θ_s) and this
 * chunk of ∇f(θ_s), entered through `lossNode` (value f, gradient ∇f): so the unroll, the first-order
 * meta-loss Σ w_t f(θ_t) and gradient checkpointing are exactly the in-process ones, restricted to the chunk.
 *
 * Everything that can fail is reported through shared memory (status word, error text), never by a message
 * the blocked main thread could not receive.
 */
import { workerData } from 'node:worker_threads';
import type * as TF from '@tensorflow/tfjs-core';
import type { ComponentConfig } from '../../contracts/json';
import type { MetaOptimizer } from '../../contracts/meta-optimizer';
import type { Optimizer } from '../../contracts/optimizer';
import type { Batch, Task, TaskConfig } from '../../contracts/task';
import type { NamedTensors } from '../../tensor-tree';
import type { Carry } from '../unroll';
import {
  CTL,
  CTL_HEADER,
  F64,
  F64_HEADER,
  F64_WORKER,
  F64_WORKER_WORDS,
  STATUS,
  WORKER,
  WORKER_WORDS,
  writeError,
  type MetaOptimizerSourceData,
  type WorkerInit,
} from './protocol';

/** The name of the chunk's one parameter tensor. */
const CHUNK = 'coordinates';

const init = workerData as WorkerInit;
const ctl = new Int32Array(init.buffers.ctl);
const f64 = new Float64Array(init.buffers.f64);
const paramsView = new Float32Array(init.buffers.params);
const gradsView = new Float32Array(init.buffers.grads);
const weightsView = new Float32Array(init.buffers.weights);
const weightGrads = new Float32Array(init.buffers.weightGrads);
const present = new Int32Array(init.buffers.present);
const errors = new Uint8Array(init.buffers.errors);
const base = CTL_HEADER + init.index * WORKER_WORDS;
const f64Base = F64_HEADER + init.index * F64_WORKER_WORDS;

function bell(): void {
  Atomics.add(ctl, CTL.BELL, 1);
  Atomics.notify(ctl, CTL.BELL);
}

let failed = false;
function fail(e: unknown): void {
  if (failed) return;
  failed = true;
  writeError(errors, init.index, e);
  Atomics.store(ctl, base + WORKER.STATUS, STATUS.FAILED);
  bell();
}

// A thread that ends by itself (process.exit in a component, say) is a failure too; terminate() does not get here.
process.on('exit', (code) => fail(new Error(`the worker thread exited (code ${code})`)));
process.on('uncaughtException', (e) => {
  fail(e);
  process.exit(1);
});

/** Blocks until the control word reaches `target` (it only grows); returns its value. */
function waitAtLeast(word: number, target: number): number {
  for (;;) {
    const v = Atomics.load(ctl, word);
    if (v >= target) return v;
    Atomics.wait(ctl, word, v);
  }
}

type Factory = (config: ComponentConfig) => MetaOptimizer;

/** The source's export, called with its args: a factory, or a registry to create the meta-optimizer with. */
async function loadFactory(source: MetaOptimizerSourceData): Promise<Factory> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(source.module) as Record<string, unknown>;
  const fn = mod[source.export];
  if (typeof fn !== 'function') throw new Error(`${source.module} exports no function "${source.export}" (exports: ${Object.keys(mod).join(', ') || 'none'})`);
  const made = (await (fn as (args: unknown) => unknown)(source.args)) as unknown;
  if (typeof made === 'function') return made as Factory;
  const registry = made as { create?: (kind: string, config: ComponentConfig, ctx: { seed: number; baseDir: string }, where?: string, label?: string) => MetaOptimizer };
  if (registry && typeof registry.create === 'function') {
    return (config) => registry.create!('meta-optimizer', config, { seed: 0, baseDir: source.baseDir ?? process.cwd() }, '', 'metaOptimizer');
  }
  throw new Error(`${source.module}: ${source.export}() returned neither a function (config) => MetaOptimizer nor a component registry`);
}

async function run(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  // Loaded here, not at the top, so that a failure to load is reported like any other.
  const tf = require('@tensorflow/tfjs-core') as typeof TF;
  const { useBackend } = require('../../backend') as typeof import('../../backend');
  const { disposeTree } = require('../../tensor-tree') as typeof import('../../tensor-tree');
  const { metaGradient } = require('../meta-gradient') as typeof import('../meta-gradient');
  const { lossNode } = require('../tape') as typeof import('../tape');
  /* eslint-enable @typescript-eslint/no-require-imports */

  const factory = await loadFactory(init.source);
  await useBackend(init.backend as 'wasm' | 'cpu' | 'tensorflow');
  if (init.prod) tf.env().set('PROD', true);
  const meta = factory(init.config);
  const layout = init.weights;
  const missing = layout.names.filter((n) => !(n in meta.variables));
  if (missing.length) throw new Error(`the meta-optimizer rebuilt from ${JSON.stringify(init.config)} has no weight(s) ${missing.join(', ')}`);

  let published = 0;

  /** The optimizee as seen from this chunk: θ_s goes out, f(θ_s) and the chunk of ∇f(θ_s) come back (once per step). */
  class ExchangeTask implements Task {
    readonly config: TaskConfig = { family: 'chunk-exchange', split: 'train', seed: 0 };
    private step = 0;
    private readonly received = new Map<number, { loss: TF.Scalar; grad: TF.Tensor }>();
    constructor(
      private readonly lo: number,
      private readonly hi: number,
    ) {}
    initParams(): NamedTensors {
      throw new Error('ExchangeTask.initParams: the main thread owns the optimizee');
    }
    batch(step: number): Batch {
      this.step = step; // loss() is called right after, with this step's params
      return {};
    }
    loss(params: NamedTensors): TF.Scalar {
      let r = this.received.get(this.step);
      // Checkpointed segments recompute steps already exchanged: the answer is the one received.
      if (!r) {
        r = this.exchange(params[CHUNK]!);
        this.received.set(this.step, r);
      }
      return lossNode(params, r.loss, { [CHUNK]: r.grad });
    }
    private exchange(theta: TF.Tensor): { loss: TF.Scalar; grad: TF.Tensor } {
      paramsView.set(theta.dataSync() as Float32Array, this.lo);
      published++;
      Atomics.store(ctl, base + WORKER.PARAMS, published);
      bell();
      waitAtLeast(CTL.GRADIENTS, published);
      return { loss: tf.keep(tf.scalar(f64[F64.LOSS]!)), grad: tf.keep(tf.tensor1d(gradsView.slice(this.lo, this.hi))) };
    }
    dispose(): void {
      for (const r of this.received.values()) tf.dispose([r.loss, r.grad]);
      this.received.clear();
    }
  }

  Atomics.store(ctl, base + WORKER.STATUS, STATUS.READY);
  bell();

  let command = 0;
  let weightsVersion = -1;
  let optimizer: Optimizer | null = null;
  let carry: Carry | null = null;
  for (;;) {
    command = waitAtLeast(CTL.COMMAND, command + 1);
    const version = Atomics.load(ctl, CTL.WEIGHTS_VERSION);
    if (version !== weightsVersion) {
      const named = tf.tidy(() => {
        const out: NamedTensors = {};
        layout.names.forEach((n, i) => {
          const size = layout.shapes[i]!.reduce((a, b) => a * b, 1);
          out[n] = tf.tensor(weightsView.slice(layout.offsets[i]!, layout.offsets[i]! + size), layout.shapes[i] as number[]);
        });
        return out;
      });
      meta.setWeights(named);
      tf.dispose(Object.values(named));
      weightsVersion = version;
    }
    const lo = Atomics.load(ctl, base + WORKER.LO);
    const hi = Atomics.load(ctl, base + WORKER.HI);
    if (Atomics.load(ctl, CTL.FRESH)) {
      if (carry) disposeTree(carry);
      carry = null;
      optimizer = meta.optimizer();
      const theta = { [CHUNK]: tf.tensor1d(paramsView.slice(lo, hi)) };
      const state = optimizer.init(theta);
      disposeTree(theta, state); // init may copy the params (then these are ours to free) or keep them
      carry = { state, loss: tf.scalar(f64[F64.LOSS]!), grads: { [CHUNK]: tf.tensor1d(gradsView.slice(lo, hi)) } };
    }
    if (!carry || !optimizer) throw new Error('an unroll that continues an episode reached a worker that holds none');
    const startStep = Atomics.load(ctl, CTL.START_STEP);
    if (carry.state.step !== startStep) throw new Error(`out of step: the main thread continues from step ${startStep}, this chunk's state is at step ${carry.state.step}`);
    const weighting = Atomics.load(ctl, CTL.WEIGHTING);
    const task = new ExchangeTask(lo, hi);
    let result;
    try {
      result = metaGradient(task, optimizer, carry, meta.variables, {
        length: Atomics.load(ctl, CTL.LENGTH),
        lossWeights: weighting === 1 ? 'uniform' : weighting === 2 ? 'last' : 'none',
        secondDerivatives: false,
        batchSeed: 0,
        training: Atomics.load(ctl, CTL.TRAINING) === 1,
        checkpointEvery: Atomics.load(ctl, CTL.CHECKPOINT_EVERY) || null,
      });
    } finally {
      task.dispose();
    }
    const total = layout.total;
    layout.names.forEach((n, i) => {
      const g = result.grads[n];
      present[init.index * layout.names.length + i] = g ? 1 : 0;
      if (g) weightGrads.set(g.dataSync() as Float32Array, init.index * total + layout.offsets[i]!);
    });
    tf.dispose([result.metaLoss, result.losses, ...Object.values(result.grads)]);
    disposeTree(carry, result.next);
    carry = result.next;
    const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
    f64[f64Base + F64_WORKER.WASM_HEAP] = wasm?.HEAPU8?.length ?? 0;
    f64[f64Base + F64_WORKER.NUM_TENSORS] = tf.memory().numTensors;
    Atomics.store(ctl, base + WORKER.DONE, command);
    bell();
  }
}

run().catch(fail);
