import type * as tf from '@tensorflow/tfjs-core';
import type { FusedSnapshot } from '@l2l/core';

/** FusedSnapshot of a run whose state is arrays: copies of them and the update count, tagged with the run's kind. */
class ArraySnapshot implements FusedSnapshot {
  private arrays: readonly Float32Array[] | null;

  constructor(
    /** The kernel and its architecture: a snapshot restores only into a run of the same kind. */
    readonly kind: string,
    readonly coordinates: number,
    readonly updates: number,
    arrays: readonly Float32Array[],
  ) {
    this.arrays = arrays;
  }

  get state(): readonly Float32Array[] {
    if (!this.arrays) throw new Error('fused kernel: the snapshot was disposed');
    return this.arrays;
  }

  dispose(): void {
    this.arrays = null;
  }
}

/**
 * The bookkeeping every fused run shares (contracts/fused.ts): updates taken, the steps recorded for the current
 * unroll, its capacity, the argument checks, with messages that name the kernel, and snapshots of the state.
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

  /** The kernel and its architecture: a snapshot restores only into a run of the same kind. */
  protected abstract stateKind(): string;

  /** The optimizer state that `step` reads and writes (views of it: snapshots copy, restore writes into them). */
  protected abstract stateArrays(): Float32Array[];

  /** FusedRun.snapshot: copies of the state arrays and the update count. */
  snapshot(): FusedSnapshot {
    this.outsideUnroll('snapshot');
    return new ArraySnapshot(this.stateKind(), this.coordinates, this.updates, this.stateArrays().map((a) => a.slice()));
  }

  /** FusedRun.restore: a snapshot of a run of the same kind and size into the state arrays, with its update count. */
  restore(snapshot: FusedSnapshot): void {
    this.outsideUnroll('restore');
    const kind = this.stateKind();
    const arrays = this.stateArrays();
    if (!(snapshot instanceof ArraySnapshot) || snapshot.kind !== kind) {
      throw new Error(`fused kernel: a snapshot of ${snapshot instanceof ArraySnapshot ? snapshot.kind : 'another kind of run'} cannot be restored into a run of ${kind}`);
    }
    if (snapshot.coordinates !== this.coordinates) throw new Error(`fused kernel: a snapshot of ${snapshot.coordinates} coordinates cannot be restored into a run of ${this.coordinates}`);
    const state = snapshot.state;
    if (state.length !== arrays.length || state.some((a, i) => a.length !== arrays[i]!.length)) throw new Error(`fused kernel: the snapshot's state does not fit this run of ${kind}`);
    arrays.forEach((a, i) => a.set(state[i]!));
    this.updates = snapshot.updates;
  }

  private outsideUnroll(what: string): void {
    this.live();
    if (this.recorded >= 0) throw new Error(`fused kernel: ${what} inside an unroll (after beginUnroll, before backward)`);
  }

  /** Marks the run disposed; true the first time. */
  protected markDisposed(): boolean {
    if (this.disposed) return false;
    this.disposed = true;
    return true;
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
