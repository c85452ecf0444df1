import type { NamedTensors } from '../tensor-tree';
import type { GradientEstimate } from './estimator';
import type { TaskConfig } from './task';

/*
 * Where an episode's tasks live. MetaTrainer meta-trains one population of `training.tasksPerStep` tasks per
 * episode; by default it holds them itself (each with its estimator's truncation state). A population source
 * may hold them elsewhere (@l2l/distributed: shards on worker processes over Redis) as long as the estimate it
 * returns is the one the engine would have made from the same seeds.
 */

/** One episode's tasks, advanced a truncation at a time. */
export interface Population {
  /** Each task's config, in task order (what error messages name). */
  readonly configs: readonly TaskConfig[];
  /**
   * The next `length` optimizee steps of every task and the estimate of the meta-gradient over them, at φ =
   * `phi` (the meta-optimizer's variables by weight name; read, not kept). Everything random is drawn from `seed`.
   */
  estimate(phi: NamedTensors, length: number, seed: number): GradientEstimate | Promise<GradientEstimate>;
  /** Each task's optimizee loss at its current parameters, in task order. */
  losses(): number[];
  /** Frees the tasks and their states (or tells whoever holds them that the episode is over). */
  dispose(): void | Promise<void>;
}

/** Opens the population of an episode. */
export interface PopulationSource {
  /** Where the tasks are, in words (`l2l train` prints it with the estimator's description). */
  readonly description: string;
  open(epoch: number, episode: number): Population | Promise<Population>;
  /** Frees connections and the like at the end of a run. */
  close?(): void | Promise<void>;
}
