export * from './optimizees-module';
