import type { NamedTensors } from '../tensor-tree';
import type { ComponentConfig } from './json';
import type { Split } from './task';

/*
 * Where evaluation and tuning runs happen. By default `l2l eval` runs them one after another in this process; a
 * run source may run them elsewhere (@l2l/distributed: BullMQ jobs on `l2l worker` processes), as long as each
 * run is the one this process would have made: the experiment's optimizee family, the task and seeds named here.
 */

/** What a run trains: a registered optimizer by its config, or a learned optimizer by its config and φ. */
export type OptimizerSpec =
  | { readonly kind: 'optimizer'; readonly name: string; readonly config: ComponentConfig }
  | { readonly kind: 'learned'; readonly name: string; readonly metaOptimizer: ComponentConfig; readonly weights: NamedTensors };

/** One run: a task of the experiment's family (`family.sample(taskSeed, split)`) trained from its seeds. */
export interface RunRequest {
  readonly split: Split;
  readonly taskSeed: number;
  readonly initSeed: number;
  readonly batchSeed: number;
  readonly steps: number;
  /** Also the task's held-out metrics and full loss of the final parameters. */
  readonly metrics?: boolean;
  /** Threads of a learned optimizer's fused kernel. */
  readonly threads?: number;
}

/** What a run gives back: RunResult's values, plain. */
export interface RunOutcome {
  /** f(θ_0), ..., f(θ_steps). */
  readonly losses: Float32Array;
  readonly metrics?: Record<string, number>;
  readonly fullLoss?: number;
}

export interface RunSource {
  /** Where runs happen, in words (`l2l eval` prints it). */
  readonly description: string;
  /** Every run's outcome, in the order given. */
  runAll(runs: ReadonlyArray<{ optimizer: OptimizerSpec; request: RunRequest }>): Promise<RunOutcome[]>;
  close?(): void | Promise<void>;
}
