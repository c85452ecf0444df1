/** One jest run over every package. Tests import workspace packages from source, so one copy of each loads. */
// The webgpu specs' software device (Dawn on Mesa's EGL) needs this in the workers' real environment: inside a
// test file process.env is a copy that native code never reads.
process.env.EGL_PLATFORM ??= 'surfaceless';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/examples'],
  testMatch: ['**/src/**/*.spec.ts'],
  // The plugin template's own tests run in the package `l2l init plugin` writes (packages/cli/src/commands/init.spec.ts).
  testPathIgnorePatterns: ['/node_modules/', '/template/', '/\\.init-test-'],
  transform: {
    // Type checking is done once by `tsc -p tsconfig.spec.json`; here we only transpile.
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.base.json' }],
  },
  moduleNameMapper: {
    '^@l2l/core/testing$': '<rootDir>/packages/core/src/testing/index.ts',
    '^@l2l/(core|optimizees|meta-optimizers|baselines|pretrained|cli|distributed)$': '<rootDir>/packages/$1/src/index.ts',
  },
  setupFiles: ['<rootDir>/packages/core/jest.setup.js'],
  testTimeout: 120000,
  // tfjs backends are process-global; separate workers keep suites independent.
  maxWorkers: 2,
};
