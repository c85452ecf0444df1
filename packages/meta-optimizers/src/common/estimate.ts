import type { ComponentEstimate } from '@l2l/core';

const FLOAT = 4;

/**
 * Lower bounds for a coordinatewise stack of LSTM layers (`inputs` features per coordinate, `hidden` units,
 * `layers` deep, a linear output): weights shared across coordinates, per coordinate its h and c per layer as
 * state and, per step of an unroll, at least its inputs and those h and c kept for the backward pass (what any
 * backpropagation through time stores, a tfjs tape or a fused kernel; the tape keeps several times more).
 */
export function lstmStackEstimate(inputs: number, hidden: number, layers: number, extraState = 0, features = 2): ComponentEstimate {
  const weights = 4 * hidden * (inputs + hidden + 1) + (layers - 1) * 4 * hidden * (2 * hidden + 1) + hidden + 1;
  return {
    weights,
    stateBytes: (layers * 2 * hidden + extraState) * FLOAT,
    stepBytes: (inputs + layers * 2 * hidden + extraState) * FLOAT,
    // The lstm-stack kernel keeps each step's input features and adjoint, the engine a copy of the adjoint;
    // the backward pass recomputes the rest one tile at a time (the gate store adds at most a fixed 128 MiB per process,
    // DEFAULT_STORE_BYTES, not counted in this lower bound).
    fusedStepBytes: (features + 2) * FLOAT,
  };
}

/** Lower bounds for a per-coordinate MLP of `inputs` → `hidden` → 1 with `state` numbers carried per coordinate. */
export function mlpEstimate(inputs: number, hidden: number, state: number): ComponentEstimate {
  return {
    weights: (inputs + 1) * hidden + hidden + 1,
    stateBytes: state * FLOAT,
    stepBytes: (inputs + 2 * hidden + state) * FLOAT,
  };
}
