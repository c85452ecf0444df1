/**
 * A learning-rate schedule of the outer loop (`training.learningRateSchedule`): the factor by which the outer
 * optimizer's learning rate is multiplied at each outer step. A pure function of the step, so that a run resumed
 * from a checkpoint continues the same schedule.
 */
export interface LearningRateSchedule {
  /** In words, for the train output (`cosine(warmup 100, to 0.1× at step 2000)`). */
  readonly name: string;
  /**
   * The factor at outer step `step` (0-based: the step of the run's `step + 1`-th meta-gradient) of a run of
   * `total` outer steps (its epochs × episodes × truncations per episode). Finite and ≥ 0.
   */
  factor(step: number, total: number): number;
}
