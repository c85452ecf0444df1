export * from './train';
export * from './evaluate';
export * from './compare';
export * from './core-components';
export * from './rebuild';
export * from './measure';
