import { componentsModule, type ComponentContribution } from '@l2l/core';
import { adagradComponent } from './adagrad';
import { adamComponent } from './adam';
import { momentumComponent } from './momentum';
import { nagComponent } from './nag';
import { rmspropComponent } from './rmsprop';
import { sgdComponent } from './sgd';

/** Every component this package contributes, in one list. */
export const baselinesContribution: ComponentContribution = {
  source: '@l2l/baselines',
  components: [sgdComponent, momentumComponent, nagComponent, rmspropComponent, adamComponent, adagradComponent],
};

/** @l2l/baselines's wiring: binds `baselinesContribution`. */
export const baselinesModule = componentsModule(baselinesContribution);
