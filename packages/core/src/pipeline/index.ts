export * from './train';
export * from './evaluate';
