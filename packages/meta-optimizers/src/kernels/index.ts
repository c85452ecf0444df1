export { kernelVariant, relaxedSimdSupported, wasmSimdSupported, type KernelVariant } from './wasm-module';
export { LstmStackKernel, lstmStackKernel, lstmStackWeightNames, TILE, type LstmStackSpec } from './lstm-stack-kernel';
export { kernelMemoryBytes } from './kernel-threads';
