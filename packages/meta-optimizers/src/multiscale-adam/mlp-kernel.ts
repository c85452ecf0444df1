import type * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel, FusedRun } from '@l2l/core';
import { acquireInstance, type KernelInstance, releaseInstance } from '../kernels/kernel-threads';
import { readWeights, RunState } from '../kernels/run-state';
import { type Area, kernelVariant, type KernelVariant, wasmSimdSupported } from '../kernels/wasm-module';

const TILE = 8;
const ROW_BYTES = TILE * 4;
/** Most timescales the kernel holds (assembly/multiscale-mlp.ts MAXK); more run on the tfjs tape. */
export const MLP_KERNEL_MAX_TIMESCALES = 16;

/** The exports of the multiscale-mlp build (assembly/multiscale-mlp.ts). */
interface MultiscaleMlpExports {
  configure(k: number, h: number, eps: number): number;
  setBetas(j: number, b1: number, b2: number, a1: number, a2: number): void;
  setCorrection(j: number, c1: number, c2: number): void;
  scratchBytes(): number;
  forwardStep(t0: number, t1: number, g: number, upd: number, moments: number, dirs: number, w: number, lr: number, scr: number): void;
  backward(t0: number, t1: number, nt: number, u: number, dirs: number, d: number, w: number, lr: number, scr: number, acc: number): void;
  reduceAcc(acc: number, out: number, n: number): void;
}

/**
 * The fused kernel of multiscale Adam with the "mlp" combiner (assembly/multiscale-mlp.ts): WebAssembly SIMD, with
 * fused multiply-add where the engine has relaxed SIMD; one thread (the `threads` option is not used). φ is
 * `mlp/hidden/kernel` ([H, k + 1]), `mlp/output/kernel` ([k, H + 1]) and, when learned, `lr/log` ([1, 1]).
 */
export class MultiscaleAdamMlpKernel implements FusedKernel {
  readonly variant: KernelVariant = kernelVariant();
  readonly description: string;

  constructor(
    private readonly betas: ReadonlyArray<readonly [number, number]>,
    private readonly epsilon: number,
    private readonly hidden: number,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    /** The fixed learning rate when it is not learned. */
    private readonly learningRate: number | null,
  ) {
    if (betas.length > MLP_KERNEL_MAX_TIMESCALES) throw new RangeError(`fused kernel: at most ${MLP_KERNEL_MAX_TIMESCALES} timescales, got ${betas.length}`);
    this.description = `wasm multiscale-adam mlp combiner (${this.variant === 'fma' ? 'SIMD + FMA' : 'SIMD, no FMA'})`;
  }

  open(n: number): FusedRun {
    return new MlpRun(this.betas, this.epsilon, this.hidden, this.weights, this.learningRate, this.variant, n);
  }
}

class MlpRun extends RunState implements FusedRun {
  private readonly inst: KernelInstance;
  private readonly ex: MultiscaleMlpExports;
  private readonly k: number;
  private readonly nt: number;
  private readonly npad: number;
  private readonly nw: number;
  private readonly w: Area;
  private readonly g: Area;
  private readonly upd: Area;
  private readonly moments: Area;
  private readonly out: Area;
  private readonly scr: number;
  private lr = 0;
  /** Sized by beginUnroll: the directions and adjoints of the unroll, the weight-gradient accumulators. */
  private dirs = 0;
  private adj = 0;
  private acc = 0;

  constructor(
    private readonly betas: ReadonlyArray<readonly [number, number]>,
    epsilon: number,
    private readonly hidden: number,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    private readonly fixedLr: number | null,
    variant: KernelVariant,
    coordinates: number,
  ) {
    super(coordinates);
    this.inst = acquireInstance('multiscale-mlp', variant);
    try {
      this.ex = this.inst.exports as unknown as MultiscaleMlpExports;
      this.k = betas.length;
      this.nw = this.ex.configure(this.k, hidden, epsilon);
      // As the tfjs path: 1 − β computed in float64, then float32.
      betas.forEach(([b1, b2], j) => this.ex.setBetas(j, b1, b2, 1 - b1, 1 - b2));
      this.nt = Math.ceil(coordinates / TILE);
      this.npad = this.nt * TILE;
      const mem = this.inst.mem;
      this.w = mem.area(this.nw);
      this.out = mem.area(this.nw + 1);
      this.g = mem.area(this.npad);
      this.upd = mem.area(this.npad);
      this.moments = mem.area(this.nt * 2 * this.k * TILE);
      this.scr = mem.alloc(this.ex.scratchBytes());
      // The memory is pooled: clear what a run reads before writing (moments, padded gradients).
      for (const a of [this.g, this.moments]) this.inst.mem.view(a).fill(0);
      this.reloadWeights();
    } catch (e) {
      releaseInstance(this.inst);
      throw e;
    }
  }

  reloadWeights(): void {
    this.live();
    const all = this.weights();
    const H = this.hidden;
    readWeights(all, ['mlp/hidden/kernel', 'mlp/output/kernel'], [H * (this.k + 1), this.k * (H + 1)], this.inst.mem.view(this.w));
    if (this.fixedLr !== null) this.lr = Math.fround(this.fixedLr);
    else {
      const log = all['lr/log'];
      if (!log) throw new Error('fused kernel: no weight "lr/log"');
      this.lr = Math.fround(Math.exp(log.dataSync()[0]!));
    }
  }

  beginUnroll(length: number): void {
    if (this.startUnroll(length)) {
      const mem = this.inst.mem;
      this.dirs = mem.alloc(length * this.nt * this.k * ROW_BYTES);
      this.adj = mem.alloc(length * this.npad * 4);
      this.acc = mem.alloc((this.nw + 1) * 16);
      this.capacity = length;
    }
  }

  step(grads: Float32Array, params: Float32Array): void {
    this.checkStep(grads, params);
    const n = this.coordinates;
    this.inst.mem.view(this.g).set(grads);
    const t = this.updates + 1;
    // As the tfjs path: m̂ = m·(1/(1 − β1^t)), v̂ = v·(1/(1 − β2^t)), each factor a float32.
    this.betas.forEach(([b1, b2], j) => this.ex.setCorrection(j, 1 / (1 - b1 ** t), 1 / (1 - b2 ** t)));
    const dirs = this.recorded >= 0 ? this.dirs + this.recorded * this.nt * this.k * ROW_BYTES : 0;
    this.ex.forwardStep(0, this.nt, this.g.ptr, this.upd.ptr, this.moments.ptr, dirs, this.w.ptr, this.lr, this.scr);
    const upd = this.inst.mem.view(this.upd);
    for (let i = 0; i < n; i++) params[i] = params[i]! + upd[i]!;
    this.stepTaken();
  }

  backward(adjoints: readonly Float32Array[]): Record<string, Float32Array> {
    const U = this.checkBackward(adjoints);
    this.inst.mem.writePadded(this.adj, adjoints, this.npad);
    this.inst.mem.f32(this.acc, (this.nw + 1) * 4).fill(0);
    this.ex.backward(0, this.nt, this.nt, U, this.dirs, this.adj, this.w.ptr, this.lr, this.scr, this.acc);
    const out = this.inst.mem.view(this.out);
    out.fill(0);
    this.ex.reduceAcc(this.acc, this.out.ptr, this.nw + 1);
    const H = this.hidden;
    const n1 = H * (this.k + 1);
    const result: Record<string, Float32Array> = { 'mlp/hidden/kernel': out.slice(0, n1), 'mlp/output/kernel': out.slice(n1, this.nw) };
    // update = −η·dir with η = exp(log η): ∂L/∂log η = −η·Σ_t ⟨r_t, dir_t⟩.
    if (this.fixedLr === null) result['lr/log'] = Float32Array.of(-this.lr * out[this.nw]!);
    return result;
  }

  protected stateKind(): string {
    return `wasm multiscale-mlp ${JSON.stringify({ betas: this.betas, hidden: this.hidden })}`;
  }

  protected stateArrays(): Float32Array[] {
    return [this.inst.mem.view(this.moments)];
  }

  dispose(): void {
    if (this.markDisposed()) releaseInstance(this.inst);
  }
}

/** The kernel, or undefined where this engine runs no WebAssembly SIMD or there are too many timescales (the tfjs path runs). */
export function multiscaleAdamMlpKernel(
  betas: ReadonlyArray<readonly [number, number]>,
  epsilon: number,
  hidden: number,
  weights: () => Readonly<Record<string, tf.Tensor>>,
  learningRate: number | null,
): MultiscaleAdamMlpKernel | undefined {
  return wasmSimdSupported() && betas.length <= MLP_KERNEL_MAX_TIMESCALES ? new MultiscaleAdamMlpKernel(betas, epsilon, hidden, weights, learningRate) : undefined;
}
