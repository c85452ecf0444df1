export * from './train';
export * from './evaluate';
export * from './compare';
export * from './estimator-components';
export * from './rebuild';
export * from './measure';
