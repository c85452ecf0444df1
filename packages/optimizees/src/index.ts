export * from './optimizees-module';
export * from './data';
export * from './mlp';
export * from './quadratic';
