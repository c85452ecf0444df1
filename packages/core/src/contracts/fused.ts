/**
 * A fused kernel: an optional, faster implementation of a coordinatewise learned optimizer's update and of
 * its first-order meta-gradient, outside tfjs.
 *
 * With second derivatives dropped, the optimizee's gradients are constants of the meta-gradient, so the adjoint
 * of every parameter value θ_{t+1} of an unroll is known once the unroll has run (the weighted optimizee
 * gradient at θ_{t+1}). A kernel can then run the whole forward pass keeping its own state, and the whole
 * backward pass at once, with no tape. The engine (engine/fused.ts) drives it; the tfjs path stays the reference
 * and the path for second derivatives and for optimizers without a kernel.
 *
 * Coordinates are the optimizee's parameter entries flattened in the order of the parameter names, as the
 * engine lays them out; a kernel needs to know nothing about the task. An optimizer offers a kernel
 * (`Optimizer.fused`) only where it gives that optimizer's updates on this layout, threads included: the engine
 * takes any kernel it is offered (first order), and how coordinates may be split over threads is the kernel's
 * business (a coordinatewise optimizer's splits them anywhere; the per-group kernel, engine/per-group.ts, splits
 * its learned groups and runs a baseline group whole).
 */
export interface FusedKernel {
  /** What runs, for the train output and `l2l list` (`wasm lstm-stack, SIMD + FMA`). */
  readonly description: string;
  /**
   * A run over `n` coordinates whose state is what `Optimizer.init` gives, with φ as it is now. `threads` > 1
   * splits the coordinates over that many threads (same results up to summation order; the built-in kernels give the
   * same bits for any count above one). `parameters`: the
   * parameter tensors along the coordinate axis, in order (what `Optimizer.init` would get as names and
   * groups); kernels that treat every coordinate alike ignore it, a per-group kernel needs it.
   */
  open(n: number, options?: { threads?: number; parameters?: readonly FusedParameter[] }): FusedRun;
}

/** One parameter tensor on a fused run's coordinate axis: `size` coordinates, after the previous ones. */
export interface FusedParameter {
  readonly name: string;
  readonly size: number;
  /** Its group (contracts/task.ts `parameterGroupsOf`). */
  readonly group: string;
}

/** One optimizee run driven by a fused kernel. Not re-entrant; dispose when done. */
export interface FusedRun {
  readonly coordinates: number;
  /** Reads φ again (after the outer optimizer changed it). */
  reloadWeights(): void;
  /**
   * Starts recording an unroll of at most `length` steps: the state now is its start. `backward` then gives
   * the meta-gradient of the steps taken since.
   */
  beginUnroll(length: number): void;
  /**
   * One update: reads the gradient (n floats) and replaces `params` (n floats) with the updated parameters.
   * Both arrays belong to the caller.
   */
  step(grads: Float32Array, params: Float32Array): void;
  /**
   * ∂/∂φ of Σ_t ⟨adjoints[t], θ_{t+1}⟩ over the steps recorded since `beginUnroll` (one adjoint of n floats per
   * step, in order), with every gradient input taken as constant: by the meta-optimizer's weight names.
   */
  backward(adjoints: readonly Float32Array[]): Record<string, Float32Array>;
  /**
   * A copy of the run's optimizer state now (what `step` reads and writes: hidden states, moments, the update
   * count; not φ, not an unroll's records). Outside an unroll only. ES and PES start runs of perturbed φ from it.
   */
  snapshot(): FusedSnapshot;
  /**
   * Makes the run's optimizer state the snapshot's (copied: the snapshot stays usable). Outside an unroll only;
   * throws for a snapshot of another kind of run, of another architecture or of another coordinate count.
   */
  restore(snapshot: FusedSnapshot): void;
  /** Frees the run's memory and threads. */
  dispose(): void;
}

/**
 * A fused run's optimizer state at one moment (FusedRun.snapshot): opaque, restorable into runs of the same
 * kernel architecture over as many coordinates, whatever their φ and threads. It owns its memory until disposed.
 */
export interface FusedSnapshot {
  readonly coordinates: number;
  dispose(): void;
}
