export * from './image-classification';
