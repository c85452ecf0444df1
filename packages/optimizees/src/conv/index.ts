export * from './layers';
export * from './conv-net';
