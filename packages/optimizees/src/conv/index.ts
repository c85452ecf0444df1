export * from './layers';
export * from './conv-net';
export * from './image-model';
