export * from './options';
export * from './rnnprop';
export * from './component';
