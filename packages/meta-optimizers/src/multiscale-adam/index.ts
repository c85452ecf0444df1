export * from './options';
export * from './multiscale-adam';
export * from './component';
