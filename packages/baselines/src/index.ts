export * from './baselines-module';
export { TFJS_EPSILON, elementwiseOptimizer, type ElementwiseRule, type ParamSlots } from './common';
export * from './sgd';
export * from './momentum';
export * from './nag';
export * from './rmsprop';
export * from './adam';
export * from './adagrad';
