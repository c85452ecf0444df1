export * from './meta-optimizers-module';
