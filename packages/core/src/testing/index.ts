/**
 * `@l2l/core/testing`: contract smoke tests for component authors. Each check is framework-agnostic: it
 * returns a promise that rejects with a `ContractError` naming the component and the broken rule.
 *
 * ```ts
 * import { checkTaskFamily } from '@l2l/core/testing';
 * import { rosenbrockFamily } from './index';
 *
 * test('rosenbrock honours the task contracts', () => checkTaskFamily(rosenbrockFamily));
 * ```
 */
export { ContractError, type CheckOptions } from './util';
export { checkTaskFamily, type TaskFamilyCheckOptions } from './task-family';
export { checkOptimizer, type OptimizerCheckOptions } from './optimizer';
export { checkMetaOptimizer, type MetaOptimizerCheckOptions } from './meta-optimizer';
export { checkComponent, checkPlugin } from './plugin';
export { checkForwardPaths, checkFusedKernel, type ForwardPathCheckOptions, type FusedKernelCheckOptions, type FusedKernelComparison } from './fused-kernel';
export { checkEstimator } from './estimator';
export { checkSchedule } from './schedule';
export { onCpuThenWebGpu } from './backends';
export { userErrorMessage } from './user-error';
