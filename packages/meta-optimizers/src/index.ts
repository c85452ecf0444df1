export * from './meta-optimizers-module';
export * from './common';
export * from './lstm';
export * from './rnnprop';
export * from './multiscale-adam';
export * from './normalized-history';
export * from './kernels';
export * from './per-group';
