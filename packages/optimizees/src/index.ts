export * from './optimizees-module';
export * from './conv';
export * from './data';
export * from './image';
export * from './mlp';
export * from './quadratic';
export * from './stn';
