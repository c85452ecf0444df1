import * as tf from '@tensorflow/tfjs-core';
import { hasEstimate, preflightExperiment, type PreflightMode, type PreflightOverrides } from '../config/preflight';
import type { ExperimentConfig } from '../config/experiment';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
import { parameterGroupsOf, type TaskFamily } from '../contracts/task';
import { deriveSeed } from '../random';
import type { ComponentRegistry } from '../registry/registry';
import { countCoordinates, disposeTree } from '../tensor-tree';

/**
 * Sizes of the built components that give no `estimate` (a plugin's, say), measured on one training task: its
 * coordinates and the tensor bytes the task and its parameters hold; a meta-optimizer's weights and the bytes of
 * its state per coordinate. Undefined when every component has an estimate (nothing is built then). What one
 * step's tape holds cannot be measured this way and counts as nothing: the check stays a lower bound.
 */
export function measureUnestimated(experiment: ExperimentConfig, registry: ComponentRegistry, family: TaskFamily, meta?: MetaOptimizer): PreflightOverrides['measured'] {
  const optimizee = !hasEstimate(registry, 'optimizee', experiment.optimizee);
  const metaOptimizer = !!meta && !!experiment.metaOptimizer && !hasEstimate(registry, 'meta-optimizer', experiment.metaOptimizer);
  if (!optimizee && !metaOptimizer) return undefined;
  const seed = deriveSeed(experiment.seed, 'preflight');
  const before = tf.memory().numBytes;
  const task = family.build(family.sample(seed, 'train'));
  let params: ReturnType<typeof task.initParams> | undefined;
  try {
    params = task.initParams(seed);
    const coordinates = countCoordinates(params);
    const measured: NonNullable<PreflightOverrides['measured']> = {};
    if (optimizee) measured.optimizee = { coordinates, bytes: tf.memory().numBytes - before };
    if (metaOptimizer) {
      const weights = Object.values(meta!.variables).reduce((n, v) => n + v.size, 0);
      const held = tf.memory().numBytes;
      const state = meta!.optimizer().init(params, parameterGroupsOf(task, Object.keys(params)));
      const stateBytes = coordinates ? (tf.memory().numBytes - held) / coordinates : 0;
      disposeTree(state, params);
      measured.metaOptimizer = { weights, stateBytes };
    }
    return measured;
  } finally {
    if (params) disposeTree(params);
    task.dispose();
  }
}

/**
 * The pre-flight again, on the built components, for those that give no estimate (it does nothing when all do):
 * a plugin's oversized task is refused here, before the first step, not by the backend mid-run.
 */
export function preflightBuilt(experiment: ExperimentConfig, registry: ComponentRegistry, where: string, mode: PreflightMode, family: TaskFamily, meta?: MetaOptimizer): void {
  const measured = measureUnestimated(experiment, registry, family, meta);
  if (measured) preflightExperiment(experiment, registry, where, mode, { measured });
}
