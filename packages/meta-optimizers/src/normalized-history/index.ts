export * from './options';
export * from './normalized-history';
export * from './component';
