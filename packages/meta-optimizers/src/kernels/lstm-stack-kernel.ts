import type * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel, FusedRun } from '@l2l/core';
import { acquireInstance, type KernelInstance, type LstmStackExports, OPS, releaseInstance } from './kernel-threads';
import { readWeights, RunState } from './run-state';
import { TileThreads } from './tile-threads';
import { type Area, kernelVariant, type KernelVariant, wasmSimdSupported } from './wasm-module';

/** Coordinates per tile of the kernel (two 4-lane vectors). */
export const TILE = 8;
const ROW_BYTES = TILE * 4;

/** The architecture of an LSTM-stack learned optimizer, as the kernel (assembly/lstm-stack.ts) runs it. */
export interface LstmStackSpec {
  /**
   * Per-coordinate input features: g, logAndSign(g), RNNprop's Adam-normalised pair, or multiscale Adam's
   * directions (one per pair of `betas`).
   */
  readonly features: 'none' | 'logAndSign' | 'adam' | 'multiscale';
  /** Multiscale features: the (β1, β2) of each timescale. */
  readonly betas?: ReadonlyArray<readonly [number, number]>;
  /** logAndSign's k. */
  readonly k?: number;
  /** Adam features' moment decays and ε. */
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
  /** Units of the ELU input layer between features and LSTM (`input/kernel`); 0: none. */
  readonly inputUnits: number;
  readonly hidden: number;
  readonly layers: number;
  /** update = scale·a (false) or scale·tanh(a) (true), a = W_out·[h_top; 1]. */
  readonly outputTanh: boolean;
  /** Instead: one logit per feature, a = W_out·[h_top; 1], and update = scale·⟨softmax(a), x⟩ (multiscale Adam's RNN combiner). */
  readonly outputSoftmax?: boolean;
  readonly scale: number;
  /** Softmax head only: a `[1, 1]` weight w giving scale = −exp(w) (a learned learning rate) instead of `scale`. */
  readonly scaleWeight?: string;
  /** The names of the weights in the kernel's order, where they are not `lstmStackWeightNames`' defaults. */
  readonly weightNames?: readonly string[];
}

/** The weight names the kernel reads, in the order of its weight area. */
export function lstmStackWeightNames(spec: LstmStackSpec): string[] {
  if (spec.weightNames) return [...spec.weightNames];
  const names = spec.inputUnits > 0 ? ['input/kernel'] : [];
  for (let l = 0; l < spec.layers; l++) names.push(`lstm${l}/kernel`);
  names.push('output/kernel');
  return names;
}

function featureRows(spec: LstmStackSpec): number {
  if (spec.features === 'multiscale') {
    if (!spec.betas?.length) throw new Error('fused kernel: multiscale features need betas');
    return spec.betas.length;
  }
  return spec.features === 'none' ? 1 : 2;
}

/** configure()'s arguments: integers, then floats (also what worker threads receive). */
function configureArgs(spec: LstmStackSpec, params: number): { ints: number[]; floats: number[] } {
  const feat = { none: 0, logAndSign: 1, adam: 2, multiscale: 3 }[spec.features];
  return {
    ints: [featureRows(spec), spec.inputUnits, spec.hidden, spec.layers, feat, spec.outputTanh ? 1 : 0, spec.outputSoftmax ? 1 : 0, params],
    floats: [spec.k ?? 10, spec.beta1 ?? 0.9, spec.beta2 ?? 0.999, spec.epsilon ?? 1e-8],
  };
}

/**
 * Default memory of the gate store (assembly/lstm-stack.ts) in one process: each step's gate activations of the top
 * layers, kept by the forward pass so that the backward pass need not recompute their matrix products. The runs open
 * at once (one per task of a meta-step, `training.tasksPerStep`) share it evenly: each takes its share when it first
 * records an unroll, so that more tasks per step do not multiply the memory. Measured on M (15,910 coordinates,
 * unroll 20; bench/results.md): 128 MiB holds the top layer of every tile and takes about 6 % off a meta-iteration
 * for 96 MB more peak RSS; 32 MiB (a third of it) changed nothing measurable. The quadratics' 1,280 coordinates fit
 * whole. `L2L_KERNEL_STORE_MB` overrides it (0: recompute everything).
 */
export const DEFAULT_STORE_BYTES = 128 * 2 ** 20;

/** lstm-stack runs open in this process (not disposed): they share the gate store's budget. */
let openRuns = 0;

/** Bytes of the gate store's header: one i32 count per layer, padded to rows of 32 bytes. */
const storeHeader = (layers: number) => Math.ceil((4 * layers) / ROW_BYTES) * ROW_BYTES;

/**
 * How many tiles' gates the store keeps per layer within `budget` bytes: the top layer's first (its product is the
 * larger), as many tiles as fit, then the next layer down with what is left; `tileBytes` per tile and layer.
 */
export function gateStoreCounts(budget: number, tiles: number, layers: number, tileBytes: number): number[] {
  const counts = new Array<number>(layers).fill(0);
  let left = budget - storeHeader(layers);
  for (let l = layers - 1; l >= 0 && left >= tileBytes; l--) {
    counts[l] = Math.min(tiles, Math.floor(left / tileBytes));
    left -= counts[l]! * tileBytes;
  }
  return counts;
}

function storeBytesFromEnv(): number {
  const mb = process.env.L2L_KERNEL_STORE_MB;
  if (mb === undefined || mb === '') return DEFAULT_STORE_BYTES;
  const v = Number(mb);
  if (!Number.isFinite(v) || v < 0) throw new Error(`L2L_KERNEL_STORE_MB must be a non-negative number of MiB, got "${mb}"`);
  return v * 2 ** 20;
}

/**
 * The fused kernel of an LSTM-stack optimizer (`lstm`, `rnnprop`): WebAssembly SIMD, with fused multiply-add
 * where the engine has relaxed SIMD. `weights` gives φ under the names of `lstmStackWeightNames`. `storeBytes`:
 * each run's gate store, fixed; by default runs share the process's (DEFAULT_STORE_BYTES or `L2L_KERNEL_STORE_MB`).
 */
export class LstmStackKernel implements FusedKernel {
  readonly variant: KernelVariant = kernelVariant();
  readonly description: string;
  /** Each run's gate store in bytes, or undefined: a share of the process's. */
  readonly storeBytes: number | undefined;
  private readonly processStoreBytes: number;

  constructor(
    readonly spec: LstmStackSpec,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    options: { storeBytes?: number } = {},
  ) {
    this.description = `wasm lstm-stack (${this.variant === 'fma' ? 'SIMD + FMA' : 'SIMD, no FMA'})`;
    if (spec.scaleWeight && !spec.outputSoftmax) throw new Error('fused kernel: scaleWeight needs the softmax head');
    this.storeBytes = options.storeBytes;
    // Read now, so that a malformed value fails when the optimizer is built, not in the first unroll.
    this.processStoreBytes = storeBytesFromEnv();
  }

  open(n: number, options: { threads?: number } = {}): FusedRun {
    const budget = () => this.storeBytes ?? Math.floor(this.processStoreBytes / Math.max(1, openRuns));
    return new LstmStackRun(this.spec, this.weights, this.variant, n, options.threads ?? 1, budget);
  }
}

/** One run of the kernel over n coordinates; see FusedRun. */
class LstmStackRun extends RunState implements FusedRun {
  private readonly inst: KernelInstance;
  private readonly ex: LstmStackExports;
  private readonly nt: number;
  private readonly npad: number;
  private readonly names: string[];
  private readonly sizes: number[];
  private readonly nw: number;
  /** How the tiles are spread over threads, with each thread's scratch and the weight-gradient accumulators. */
  private readonly tiles: TileThreads;
  /** φ as the weights lay it out (row-major), and as the kernel reads it (packWeights). */
  private readonly raw: Area;
  private readonly w: Area;
  private readonly g: Area;
  private readonly upd: Area;
  private readonly state: Area;
  private readonly moments: Area;
  private readonly init: Area;
  private readonly out: Area;
  /** Sized by beginUnroll: features and adjoints of the unroll. */
  private xs = 0;
  private adj = 0;
  /** The gate store (assembly/lstm-stack.ts) for unrolls of up to `capacity` steps; 0: none. */
  private store = 0;
  /** The gate store's size (0 before the first unroll, or where its budget holds not one tile's gates). */
  gateStoreBytes = 0;
  /** Multiscale features: 6 floats per timescale (β1, β2, 1 − β1, 1 − β2, this step's two corrections). */
  private readonly params: Area;
  /** The update's scale (−exp of spec.scaleWeight where it is learned), as float32. */
  private scale = 0;

  constructor(
    private readonly spec: LstmStackSpec,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    variant: KernelVariant,
    coordinates: number,
    threads: number,
    /** The gate store's bytes for this run, asked when it first records an unroll (and when one grows). */
    private readonly storeBudget: () => number,
  ) {
    super(coordinates);
    this.inst = acquireInstance('lstm-stack', variant);
    try {
      this.ex = this.inst.exports;
      const F = featureRows(spec);
      this.params = { ptr: this.inst.mem.alloc(Math.max(1, F * 6) * 4), floats: F * 6 };
      if (spec.features === 'multiscale') {
        // 1 − β in float64, then float32, as the tfjs path's constants.
        const p = this.inst.mem.view(this.params);
        spec.betas!.forEach(([b1, b2], j) => p.set([b1, b2, 1 - b1, 1 - b2, 0, 0], 6 * j));
      }
      const { ints, floats } = configureArgs(spec, this.params.ptr);
      this.nw = (this.ex.configure as (...a: number[]) => number)(...ints, ...floats);
      this.names = lstmStackWeightNames(spec);
      this.nt = Math.ceil(coordinates / TILE);
      this.npad = this.nt * TILE;
      const stateRows = this.ex.stateRows();
      this.raw = this.inst.mem.area(this.nw);
      this.w = this.inst.mem.area(this.nw);
      this.out = this.inst.mem.area(this.nw + 1);
      this.g = this.inst.mem.area(this.npad);
      this.upd = this.inst.mem.area(this.npad);
      this.state = this.inst.mem.area(this.nt * stateRows * TILE);
      this.moments = this.inst.mem.area(this.nt * 2 * F * TILE);
      this.init = this.inst.mem.area(this.nt * stateRows * TILE);
      // One v128 per weight, then ∂L/∂scale's (the softmax head).
      this.tiles = new TileThreads(this.inst, this.nt, threads, (this.nw + 1) * 16, this.ex.recordRows() * ROW_BYTES);
      // The memory is pooled: clear what a run reads before writing (state, moments, padded gradients).
      for (const a of [this.g, this.state, this.moments]) this.inst.mem.view(a).fill(0);
      // Each weight's extent in the weight area: [input/kernel,] lstm0..lstm{L-1}, output/kernel.
      const bounds = [...(spec.inputUnits > 0 ? [0] : []), ...Array.from({ length: spec.layers + 1 }, (_, l) => this.ex.weightOffset(l)), this.nw];
      this.sizes = this.names.map((_, i) => bounds[i + 1]! - bounds[i]!);
      if (this.tiles.threads > 1) {
        this.tiles.setArgs(ints, floats);
        this.tiles.workers().call(OPS.CONFIGURE, () => undefined);
      }
      this.reloadWeights();
    } catch (e) {
      releaseInstance(this.inst);
      throw e;
    }
    openRuns++;
  }

  reloadWeights(): void {
    this.live();
    const all = this.weights();
    readWeights(all, this.names, this.sizes, this.inst.mem.view(this.raw));
    this.ex.packWeights(this.raw.ptr, this.w.ptr, this.nw);
    if (this.spec.scaleWeight) {
      const t = all[this.spec.scaleWeight];
      if (!t || t.size !== 1) throw new Error(`fused kernel: no 1-entry weight "${this.spec.scaleWeight}"`);
      this.scale = Math.fround(-Math.fround(Math.exp(t.dataSync()[0]!)));
    } else this.scale = Math.fround(this.spec.scale);
  }

  beginUnroll(length: number): void {
    if (this.startUnroll(length)) {
      const mem = this.inst.mem;
      const F = featureRows(this.spec);
      this.xs = mem.alloc(length * this.nt * F * ROW_BYTES);
      this.adj = mem.alloc(length * this.npad * 4);
      this.tiles.sizeBackward(this.ex.scratchBytes(length));
      const counts = gateStoreCounts(this.storeBudget(), this.nt, this.spec.layers, this.ex.storeTileBytes(length));
      const total = counts.reduce((a, b) => a + b, 0);
      this.gateStoreBytes = total > 0 ? storeHeader(this.spec.layers) + total * this.ex.storeTileBytes(length) : 0;
      this.store = total > 0 ? mem.alloc(this.gateStoreBytes) : 0;
      if (this.store) new Int32Array(mem.memory.buffer, this.store, this.spec.layers).set(counts);
      this.capacity = length;
    }
    const stateFloats = this.state.floats;
    new Float32Array(this.inst.mem.memory.buffer).copyWithin(this.init.ptr / 4, this.state.ptr / 4, this.state.ptr / 4 + stateFloats);
  }

  step(grads: Float32Array, params: Float32Array): void {
    this.checkStep(grads, params);
    const n = this.coordinates;
    this.inst.mem.view(this.g).set(grads);
    const t = this.updates + 1;
    const b1 = this.spec.beta1 ?? 0.9;
    const b2 = this.spec.beta2 ?? 0.999;
    // As RNNprop's tfjs path: m̂ = m·(1/(1 − β1^t)), v̂ = v/(1 − β2^t).
    const c1 = 1 / (1 - b1 ** t);
    const d2 = 1 - b2 ** t;
    if (this.spec.features === 'multiscale') {
      // As the tfjs path: m̂ = m·(1/(1 − β1^t)), v̂ = v·(1/(1 − β2^t)), each factor a float32.
      const p = this.inst.mem.view(this.params);
      this.spec.betas!.forEach(([m1, m2], j) => p.set([1 / (1 - m1 ** t), 1 / (1 - m2 ** t)], 6 * j + 4));
    }
    const F = featureRows(this.spec);
    const xs = this.recorded >= 0 ? this.xs + this.recorded * this.nt * F * ROW_BYTES : 0;
    const { ex } = this;
    // Outside an unroll (evaluation) nothing is recorded: no store either.
    const store = this.recorded >= 0 ? this.store : 0;
    const step = Math.max(this.recorded, 0);
    this.tiles.setArgs([this.g.ptr, this.upd.ptr, this.state.ptr, this.moments.ptr, xs, this.w.ptr, store, step, this.capacity], [c1, d2, this.scale]);
    this.tiles.forward(OPS.FORWARD, (t0, t1, cur) =>
      ex.forwardStep(t0, t1, this.g.ptr, this.upd.ptr, this.state.ptr, this.moments.ptr, cur, xs, this.w.ptr, c1, d2, store, step, this.capacity, this.scale),
    );
    const upd = this.inst.mem.view(this.upd);
    for (let i = 0; i < n; i++) params[i] = params[i]! + upd[i]!;
    this.stepTaken();
  }

  backward(adjoints: readonly Float32Array[]): Record<string, Float32Array> {
    const U = this.checkBackward(adjoints);
    this.inst.mem.writePadded(this.adj, adjoints, this.npad);
    const { ex, nt } = this;
    this.tiles.setArgs([nt, U, this.init.ptr, this.xs, this.adj, this.w.ptr, this.store, this.capacity], [this.scale]);
    this.tiles.backward(OPS.BACKWARD, (t0, t1, scr, acc) =>
      ex.backward(t0, t1, nt, U, this.init.ptr, this.xs, this.adj, this.w.ptr, scr, acc, this.store, this.capacity, this.scale),
    );
    const out = this.inst.mem.view(this.out);
    out.fill(0);
    for (const acc of this.tiles.accumulators) ex.reduceAcc(acc, this.out.ptr, this.nw + 1);
    const result: Record<string, Float32Array> = {};
    let at = 0;
    this.names.forEach((name, i) => {
      result[name] = out.slice(at, at + this.sizes[i]!);
      at += this.sizes[i]!;
    });
    // update = scale·⟨w, x⟩ with scale = −exp(s): ∂L/∂s = scale·Σ_t ⟨r_t, ⟨w, x⟩_t⟩ (the kernel's last accumulator).
    if (this.spec.scaleWeight) result[this.spec.scaleWeight] = Float32Array.of(this.scale * out[this.nw]!);
    return result;
  }

  protected stateKind(): string {
    return `wasm lstm-stack ${JSON.stringify(this.spec)}`;
  }

  /** Every layer's h and c, and the Adam moments of Adam-like features. */
  protected stateArrays(): Float32Array[] {
    return [this.inst.mem.view(this.state), this.inst.mem.view(this.moments)];
  }

  dispose(): void {
    if (this.markDisposed()) {
      openRuns--;
      releaseInstance(this.inst);
    }
  }
}

/** The kernel of `spec`, or undefined where this engine runs no WebAssembly SIMD (the tfjs path then runs). */
export function lstmStackKernel(
  spec: LstmStackSpec,
  weights: () => Readonly<Record<string, tf.Tensor>>,
  options: { storeBytes?: number } = {},
): LstmStackKernel | undefined {
  return wasmSimdSupported() ? new LstmStackKernel(spec, weights, options) : undefined;
}
