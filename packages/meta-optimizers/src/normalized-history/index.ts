export * from './options';
export * from './normalized-history';
export * from './component';
export { NormalizedHistoryKernel, normalizedHistoryKernel } from './kernel';
