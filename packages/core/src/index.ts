import 'reflect-metadata';

export * from './contracts/json';
export * from './contracts/task';
export * from './contracts/optimizer';
export * from './contracts/meta-optimizer';
export * from './tensor-tree';
export * from './random';
export * from './errors';
export * from './backend';
export * from './config/validate';
export * from './config/experiment';
export * from './registry/component';
export * from './registry/registry';
export * from './container';
export * from './plugins';
export * from './engine';
export * from './pipeline';
export * from './variable-optimizer';
