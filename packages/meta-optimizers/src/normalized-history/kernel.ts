import type * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel, FusedRun } from '@l2l/core';
import { acquireInstance, type KernelInstance, OPS, releaseInstance } from '../kernels/kernel-threads';
import { readWeights, RunState } from '../kernels/run-state';
import { TileThreads } from '../kernels/tile-threads';
import { type Area, kernelVariant, type KernelVariant, wasmSimdSupported } from '../kernels/wasm-module';
import type { NormalizedHistoryOptions } from './options';

const TILE = 8;
const ROW_BYTES = TILE * 4;

/** The exports of the normalized-history build (assembly/normalized-history.ts). */
export interface NormalizedHistoryExports {
  configure(k: number, hd: number, m: number, minStep: number, infNorm: number, grid: number): number;
  scratchBytes(u: number): number;
  forwardStep(t0: number, t1: number, th: number, g: number, out: number, state: number, xs: number, w: number, first: number, scr: number): void;
  backward(t0: number, t1: number, nt: number, u: number, init: number, xs: number, d: number, w: number, first: number, scr: number, acc: number): void;
  reduceAcc(acc: number, out: number, n: number): void;
}

const WEIGHT_NAMES = ['hidden/kernel', 'output/kernel'] as const;

/**
 * The fused kernel of the normalised-history optimizer (assembly/normalized-history.ts): WebAssembly SIMD, with
 * fused multiply-add where the engine has relaxed SIMD, in tiles of 8 coordinates split over `threads` threads
 * that share the kernel's memory (kernels/kernel-threads.ts). φ is `hidden/kernel` ([hidden, 2k + 1]) and
 * `output/kernel` ([M + 2, hidden + 1]).
 */
export class NormalizedHistoryKernel implements FusedKernel {
  readonly variant: KernelVariant = kernelVariant();
  readonly description: string;

  constructor(
    private readonly options: Readonly<NormalizedHistoryOptions>,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
  ) {
    this.description = `wasm normalized-history (${this.variant === 'fma' ? 'SIMD + FMA' : 'SIMD, no FMA'})`;
  }

  open(n: number, options: { threads?: number } = {}): FusedRun {
    return new NormalizedHistoryRun(this.options, this.weights, this.variant, n, options.threads ?? 1);
  }
}

class NormalizedHistoryRun extends RunState implements FusedRun {
  private readonly inst: KernelInstance;
  private readonly ex: NormalizedHistoryExports;
  private readonly nt: number;
  private readonly npad: number;
  private readonly nw: number;
  private readonly sizes: number[];
  private readonly w: Area;
  private readonly th: Area;
  private readonly g: Area;
  private readonly next: Area;
  /** The windows, 2k rows per tile. */
  private readonly state: Area;
  /** The windows at the current unroll's start. */
  private readonly init: Area;
  private readonly out: Area;
  /** How the tiles are spread over threads, with each thread's scratch and the weight-gradient accumulators. */
  private readonly tiles: TileThreads;
  /** Sized by beginUnroll: each step's θ and g, the adjoints. */
  private xs = 0;
  private adj = 0;
  /** The current unroll began at the run's first step (its windows were θ₀ and g₀). */
  private firstUnroll = false;
  /** The kernel and its architecture, for snapshots. */
  private readonly kind: string;

  constructor(
    options: Readonly<NormalizedHistoryOptions>,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    variant: KernelVariant,
    coordinates: number,
    threads: number,
  ) {
    super(coordinates);
    this.kind = `wasm normalized-history ${JSON.stringify(options)}`;
    this.inst = acquireInstance('normalized-history', variant);
    try {
      this.ex = this.inst.exports as unknown as NormalizedHistoryExports;
      const { historySize: k, hidden, magnitudes, minStep, paramInput } = options;
      const m = magnitudes.length;
      const mem = this.inst.mem;
      // The grid, each magnitude splatted to a row of the tile.
      const grid = mem.area(m * TILE);
      this.inst.mem.view(grid).set(magnitudes.flatMap((v) => new Array<number>(TILE).fill(v)));
      const ints = [k, hidden, m, paramInput === 'infNorm' ? 1 : 0, grid.ptr];
      this.nw = this.ex.configure(k, hidden, m, minStep, ints[3]!, grid.ptr);
      this.sizes = [hidden * (2 * k + 1), (m + 2) * (hidden + 1)];
      this.nt = Math.ceil(coordinates / TILE);
      this.npad = this.nt * TILE;
      this.w = mem.area(this.nw);
      this.out = mem.area(this.nw);
      this.th = mem.area(this.npad);
      this.g = mem.area(this.npad);
      this.next = mem.area(this.npad);
      this.state = mem.area(this.nt * 2 * k * TILE);
      this.init = mem.area(this.nt * 2 * k * TILE);
      this.tiles = new TileThreads(this.inst, this.nt, threads, this.nw * 16, this.ex.scratchBytes(0));
      // The memory is pooled: clear the padding lanes a run reads (parameters and gradients past n).
      for (const a of [this.th, this.g]) this.inst.mem.view(a).fill(0);
      if (this.tiles.threads > 1) {
        this.tiles.setArgs([k, hidden, m, ints[3]!, grid.ptr], [minStep]);
        this.tiles.workers().call(OPS.CONFIGURE, () => undefined);
      }
      this.reloadWeights();
    } catch (e) {
      releaseInstance(this.inst);
      throw e;
    }
  }

  reloadWeights(): void {
    this.live();
    readWeights(this.weights(), WEIGHT_NAMES, this.sizes, this.inst.mem.view(this.w));
  }

  beginUnroll(length: number): void {
    if (this.startUnroll(length)) {
      const mem = this.inst.mem;
      this.xs = mem.alloc(length * this.nt * 2 * ROW_BYTES);
      this.adj = mem.alloc(length * this.npad * 4);
      this.tiles.sizeBackward(this.ex.scratchBytes(length));
      this.capacity = length;
    }
    this.firstUnroll = this.updates === 0;
    const f = new Float32Array(this.inst.mem.memory.buffer);
    f.copyWithin(this.init.ptr / 4, this.state.ptr / 4, this.state.ptr / 4 + this.state.floats);
  }

  step(grads: Float32Array, params: Float32Array): void {
    this.checkStep(grads, params);
    this.inst.mem.view(this.th).set(params);
    this.inst.mem.view(this.g).set(grads);
    const xs = this.recorded >= 0 ? this.xs + this.recorded * this.nt * 2 * ROW_BYTES : 0;
    const first = this.updates === 0 ? 1 : 0;
    const { ex } = this;
    this.tiles.setArgs([this.th.ptr, this.g.ptr, this.next.ptr, this.state.ptr, xs, this.w.ptr, first]);
    this.tiles.forward(OPS.FORWARD, (t0, t1, cur) => ex.forwardStep(t0, t1, this.th.ptr, this.g.ptr, this.next.ptr, this.state.ptr, xs, this.w.ptr, first, cur));
    params.set(this.inst.mem.f32(this.next.ptr, this.coordinates));
    this.stepTaken();
  }

  backward(adjoints: readonly Float32Array[]): Record<string, Float32Array> {
    const U = this.checkBackward(adjoints);
    const mem = this.inst.mem;
    mem.writePadded(this.adj, adjoints, this.npad);
    const { ex, nt } = this;
    const first = this.firstUnroll ? 1 : 0;
    this.tiles.setArgs([nt, U, this.init.ptr, this.xs, this.adj, this.w.ptr, first]);
    this.tiles.backward(OPS.BACKWARD, (t0, t1, scr, acc) => ex.backward(t0, t1, nt, U, this.init.ptr, this.xs, this.adj, this.w.ptr, first, scr, acc));
    const out = this.inst.mem.view(this.out);
    out.fill(0);
    for (const acc of this.tiles.accumulators) ex.reduceAcc(acc, this.out.ptr, this.nw);
    return { [WEIGHT_NAMES[0]]: out.slice(0, this.sizes[0]), [WEIGHT_NAMES[1]]: out.slice(this.sizes[0], this.nw) };
  }

  protected stateKind(): string {
    return this.kind;
  }

  /** The windows; the update count says whether the next step is the first (windows of θ₀ and g₀). */
  protected stateArrays(): Float32Array[] {
    return [this.inst.mem.view(this.state)];
  }

  dispose(): void {
    if (this.markDisposed()) releaseInstance(this.inst);
  }
}

/** The kernel, or undefined where this engine runs no WebAssembly SIMD (the tfjs path runs). */
export function normalizedHistoryKernel(
  options: Readonly<NormalizedHistoryOptions>,
  weights: () => Readonly<Record<string, tf.Tensor>>,
): NormalizedHistoryKernel | undefined {
  return wasmSimdSupported() ? new NormalizedHistoryKernel(options, weights) : undefined;
}
