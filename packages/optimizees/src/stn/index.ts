export * from './affine-distortion';
export * from './bilinear-sampler';
export * from './stn';
