export * from './options';
export * from './lstm';
export * from './component';
