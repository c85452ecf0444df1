export * from './idx';
export * from './datasets';
