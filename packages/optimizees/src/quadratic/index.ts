export * from './quadratic';
