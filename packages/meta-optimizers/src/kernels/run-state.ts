import type * as tf from '@tensorflow/tfjs-core';
import { CTRL } from './kernel-threads';

/**
 * The bookkeeping every fused run shares (contracts/fused.ts): updates taken, the steps recorded for the current
 * unroll, its capacity, and the argument checks, with messages that name the kernel.
 */
export abstract class RunState {
  /** Updates taken so far (bias corrections use it). */
  protected updates = 0;
  /** Steps recorded in the current unroll; −1 outside one (evaluation). */
  protected recorded = -1;
  /** Longest unroll the run has memory for. */
  protected capacity = 0;
  private disposed = false;

  constructor(readonly coordinates: number) {
    if (!Number.isInteger(coordinates) || coordinates < 1) throw new RangeError(`fused kernel: coordinates must be a positive integer, got ${coordinates}`);
  }

  protected live(): void {
    if (this.disposed) throw new Error('fused kernel: the run was disposed');
  }

  /** Checks `length`, starts recording; true when the run must make room for a longer unroll (then set `capacity`). */
  protected startUnroll(length: number): boolean {
    this.live();
    if (!Number.isInteger(length) || length < 1) throw new RangeError(`fused kernel: unroll length must be a positive integer, got ${length}`);
    this.recorded = 0;
    return length > this.capacity;
  }

  protected checkStep(grads: Float32Array, params: Float32Array): void {
    this.live();
    const n = this.coordinates;
    if (grads.length !== n || params.length !== n) throw new RangeError(`fused kernel: expected ${n} gradients and parameters, got ${grads.length} and ${params.length}`);
    if (this.recorded >= this.capacity) throw new Error(`fused kernel: the unroll begun with length ${this.capacity} is already complete`);
  }

  protected stepTaken(): void {
    this.updates++;
    if (this.recorded >= 0) this.recorded++;
  }

  /** Checks the adjoints against the recorded steps; returns how many steps there are. Ends the unroll. */
  protected checkBackward(adjoints: readonly Float32Array[]): number {
    this.live();
    const U = this.recorded;
    if (U < 1) throw new Error('fused kernel: backward needs an unroll begun with beginUnroll and at least one step');
    if (adjoints.length !== U) throw new RangeError(`fused kernel: ${U} steps were recorded, got ${adjoints.length} adjoints`);
    adjoints.forEach((a, t) => {
      if (a.length !== this.coordinates) throw new RangeError(`fused kernel: adjoint ${t} has ${a.length} entries, expected ${this.coordinates}`);
    });
    this.recorded = -1;
    return U;
  }

  /** Marks the run disposed; true the first time. */
  protected markDisposed(): boolean {
    if (this.disposed) return false;
    this.disposed = true;
    return true;
  }
}

/** Each of `threads` threads' tiles [t0, t1) of `nt`: contiguous and as even as can be, thread 0 first. */
export function tileRanges(nt: number, threads: number): Array<[number, number]> {
  return Array.from({ length: threads }, (_, i) => [Math.floor((nt * i) / threads), Math.floor((nt * (i + 1)) / threads)] as [number, number]);
}

/**
 * The worker threads' slots in the control block (kernel-threads.ts CTRL): thread w ≥ 1's tile range and its
 * scratch pointers cur, scr, acc (0 where not allocated yet); thread 0 is the caller's.
 */
export function writeWorkerSlots(i32: Int32Array, ranges: ReadonlyArray<readonly [number, number]>, cur: readonly number[], scr: readonly number[], acc: readonly number[]): void {
  for (let w = 1; w < ranges.length; w++) {
    const base = CTRL.WORKER + CTRL.WORKER_STRIDE * (w - 1);
    i32[base] = ranges[w]![0];
    i32[base + 1] = ranges[w]![1];
    i32[base + 2] = cur[w] ?? 0;
    i32[base + 3] = scr[w] ?? 0;
    i32[base + 4] = acc[w] ?? 0;
  }
}

/** φ's tensors `names`, back to back into `into` (a kernel's weight area), each checked against its size. */
export function readWeights(all: Readonly<Record<string, tf.Tensor>>, names: readonly string[], sizes: readonly number[], into: Float32Array): void {
  let at = 0;
  names.forEach((name, i) => {
    const t = all[name];
    if (!t) throw new Error(`fused kernel: no weight "${name}"`);
    if (t.size !== sizes[i]) throw new Error(`fused kernel: weight "${name}" has ${t.size} entries, the kernel expects ${sizes[i]}`);
    into.set(t.dataSync() as Float32Array, at);
    at += t.size;
  });
}
