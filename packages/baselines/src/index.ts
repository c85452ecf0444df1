export * from './baselines-module';
