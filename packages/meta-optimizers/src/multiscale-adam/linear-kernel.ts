import type * as tf from '@tensorflow/tfjs-core';
import type { FusedKernel, FusedRun } from '@l2l/core';
import { RunState } from '../kernels/run-state';

/**
 * The fused kernel of multiscale Adam with the "linear" combiner, in plain JavaScript: per coordinate the k Adam
 * directions u_j (which depend on the gradients alone), and the update −η·Σ_j softmax(ℓ)_j·u_j. The work per
 * coordinate is a few dozen flops with no weight matrix, so typed-array loops are fast enough; what the kernel
 * saves is the tape. First-order: with the gradients constant, the directions are constants of the
 * meta-gradient, so the backward pass needs only S_j = Σ_t ⟨a_t, u_{j,t}⟩, a_t = Σ_{s ≥ t} D_s the adjoint of
 * update t; then ∂L/∂w_j = −η·S_j, ∂L/∂ℓ = w ⊙ (∂L/∂w − ⟨w, ∂L/∂w⟩) and ∂L/∂log η = −η·Σ_j w_j S_j.
 */
export class MultiscaleAdamLinearKernel implements FusedKernel {
  readonly description = 'js multiscale-adam (linear combiner)';

  constructor(
    private readonly betas: ReadonlyArray<readonly [number, number]>,
    private readonly epsilon: number,
    /** φ: `combiner/logits` ([1, k]) and, when learned, `lr/log` ([1, 1]). */
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    /** The fixed learning rate when it is not learned. */
    private readonly learningRate: number | null,
  ) {}

  open(n: number): FusedRun {
    return new LinearRun(this.betas, this.epsilon, this.weights, this.learningRate, n);
  }
}

class LinearRun extends RunState implements FusedRun {
  private readonly k: number;
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  /** The directions of each recorded step: u_{j,t,i} at (t·k + j)·n + i. */
  private dirs = new Float32Array(0);
  private w = new Float64Array(0);
  private lr = 0;

  constructor(
    private readonly betas: ReadonlyArray<readonly [number, number]>,
    private readonly epsilon: number,
    private readonly weights: () => Readonly<Record<string, tf.Tensor>>,
    private readonly fixedLr: number | null,
    coordinates: number,
  ) {
    super(coordinates);
    this.k = betas.length;
    this.m = new Float32Array(this.k * coordinates);
    this.v = new Float32Array(this.k * coordinates);
    this.reloadWeights();
  }

  reloadWeights(): void {
    this.live();
    const all = this.weights();
    const logits = all['combiner/logits'];
    if (!logits || logits.size !== this.k) throw new Error(`fused kernel: combiner/logits must have ${this.k} entries`);
    const l = Float64Array.from(logits.dataSync());
    const top = Math.max(...l);
    const e = l.map((x) => Math.exp(x - top));
    const sum = e.reduce((a, b) => a + b, 0);
    this.w = e.map((x) => Math.fround(x / sum));
    if (this.fixedLr === null) {
      const log = all['lr/log'];
      if (!log) throw new Error('fused kernel: no weight "lr/log"');
      this.lr = Math.fround(Math.exp(log.dataSync()[0]!));
    } else this.lr = Math.fround(this.fixedLr);
  }

  beginUnroll(length: number): void {
    if (this.startUnroll(length)) {
      this.dirs = new Float32Array(length * this.k * this.coordinates);
      this.capacity = length;
    }
  }

  step(grads: Float32Array, params: Float32Array): void {
    this.checkStep(grads, params);
    const { k, m, v, w, coordinates: n } = this;
    const t = this.updates + 1;
    const dir = new Float32Array(n);
    for (let j = 0; j < k; j++) {
      const [b1, b2] = this.betas[j]!;
      // As the tfjs path: m̂ = m·(1/(1 − β1^t)), v̂ = v·(1/(1 − β2^t)), each factor a float32.
      const c1 = Math.fround(1 / (1 - b1 ** t));
      const c2 = Math.fround(1 / (1 - b2 ** t));
      const a1 = Math.fround(1 - b1);
      const a2 = Math.fround(1 - b2);
      const f1 = Math.fround(b1);
      const f2 = Math.fround(b2);
      const wj = w[j]!;
      const base = j * n;
      const rec = this.recorded >= 0 ? (this.recorded * k + j) * n : -1;
      for (let i = 0; i < n; i++) {
        const g = grads[i]!;
        const mi = (m[base + i] = Math.fround(f1 * m[base + i]!) + Math.fround(a1 * g));
        const vi = (v[base + i] = Math.fround(f2 * v[base + i]!) + Math.fround(a2 * Math.fround(g * g)));
        const u = Math.fround(Math.fround(mi * c1) / Math.fround(Math.fround(Math.sqrt(Math.fround(vi * c2))) + this.epsilon));
        if (rec >= 0) this.dirs[rec + i] = u;
        dir[i] = dir[i]! + Math.fround(wj * u);
      }
    }
    const lr = this.lr;
    for (let i = 0; i < n; i++) params[i] = params[i]! + Math.fround(-lr * dir[i]!);
    this.stepTaken();
  }

  backward(adjoints: readonly Float32Array[]): Record<string, Float32Array> {
    const U = this.checkBackward(adjoints);
    const { k, coordinates: n, w, lr } = this;
    const run = new Float64Array(n);
    const S = new Float64Array(k);
    for (let t = U - 1; t >= 0; t--) {
      const d = adjoints[t]!;
      for (let i = 0; i < n; i++) run[i] = run[i]! + d[i]!;
      for (let j = 0; j < k; j++) {
        const base = (t * k + j) * n;
        let s = 0;
        for (let i = 0; i < n; i++) s += run[i]! * this.dirs[base + i]!;
        S[j] = S[j]! + s;
      }
    }
    const dw = Array.from(S, (s) => -lr * s);
    const mean = dw.reduce((a, x, j) => a + x * w[j]!, 0);
    const out: Record<string, Float32Array> = { 'combiner/logits': Float32Array.from(dw, (x, j) => w[j]! * (x - mean)) };
    if (this.fixedLr === null) out['lr/log'] = Float32Array.of(-lr * S.reduce((a, s, j) => a + w[j]! * s, 0));
    return out;
  }

  protected stateKind(): string {
    return `js multiscale-adam linear ${JSON.stringify({ betas: this.betas, epsilon: this.epsilon })}`;
  }

  protected stateArrays(): Float32Array[] {
    return [this.m, this.v];
  }

  dispose(): void {
    if (this.markDisposed()) this.dirs = new Float32Array(0);
  }
}
