export * from './idx';
export * from './datasets';
export * from './cifar10';
