export * from './network';
export * from './mnist-mlp';
