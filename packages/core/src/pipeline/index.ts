export * from './train';
export * from './evaluate';
export * from './compare';
export * from './measure';
