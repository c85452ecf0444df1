import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, useBackend, type ComponentDefinition, type NamedTensors, type Optimizer } from '../index';
import { checkOptimizer, ContractError } from './index';

interface Breakage {
  disposesInput?: boolean;
  ascends?: boolean;
  leaks?: boolean;
  dropsName?: boolean;
  noStep?: boolean;
  keepsTensor?: boolean;
}

/** Momentum SGD (a slot per parameter, shared between states when unchanged), with optional defects. */
function momentum(broken: Breakage = {}): ComponentDefinition<'optimizer', { learningRate: number; momentum: number }> {
  return defineComponent<{ learningRate: number; momentum: number }>()({
    kind: 'optimizer',
    type: 'spec-momentum',
    description: 'Test momentum',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.1, description: 'Step size' },
        momentum: { type: 'number', minimum: 0, default: 0.5, description: 'Momentum' },
      },
    },
    create: ({ learningRate, momentum: mu }): Optimizer => {
      const held = broken.keepsTensor ? tf.scalar(learningRate) : undefined;
      void held;
      return {
        name: `spec-momentum(lr=${learningRate})`,
        init: (params) => ({
          params: Object.fromEntries(Object.entries(params).map(([n, p]) => [n, tf.clone(p)])),
          slots: Object.fromEntries(Object.keys(params).map((n) => [n, tf.zerosLike(params[n]!)])),
          step: 0,
        }),
        update: (state, grads) => {
          if (broken.leaks) tf.keep(tf.scalar(0));
          const out = tf.tidy(() => {
            const params: NamedTensors = {};
            const slots: NamedTensors = {};
            for (const [n, p] of Object.entries(state.params)) {
              if (broken.dropsName && n === 'b') continue;
              const v = tf.add(tf.mul((state.slots as NamedTensors)[n]!, mu), grads[n]!);
              slots[n] = v;
              params[n] = broken.ascends ? tf.add(p, tf.mul(v, learningRate)) : tf.sub(p, tf.mul(v, learningRate));
            }
            return { params, slots };
          });
          if (broken.disposesInput) Object.values(state.params).forEach((t) => t.dispose());
          return { ...out, step: broken.noStep ? state.step : state.step + 1 };
        },
      };
    },
  });
}

const fails = (def: ComponentDefinition, pattern: RegExp) => expect(checkOptimizer(def)).rejects.toThrow(pattern);

describe('checkOptimizer', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('passes a correct optimizer, and leaves no tensor behind', async () => {
    const before = tf.memory().numTensors;
    await checkOptimizer(momentum());
    await checkOptimizer(momentum(), { options: { momentum: 0 }, steps: 3 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('throws a ContractError naming the component', async () => {
    const e = await checkOptimizer(momentum({ ascends: true })).catch((x) => x);
    expect(e).toBeInstanceOf(ContractError);
    expect(e.message).toMatch(/^checkOptimizer\(optimizer "spec-momentum"\): 10 updates with options \{"learningRate":0.1,"momentum":0.5\} did not lower/);
  });

  it('fails an update that disposes its inputs', () => fails(momentum({ disposesInput: true }), /update #1: state.params: "(w|b)" was disposed/));
  it('fails an update that leaks a tensor', () => fails(momentum({ leaks: true }), /leaked 10 tensor\(s\)/));
  it('fails an update that drops a parameter', () => fails(momentum({ dropsName: true }), /names changed from \[b, w\] to \[w\]/));
  it('fails an update that does not count steps', () => fails(momentum({ noStep: true }), /step is 0, expected 1/));
  it('fails an optimizer that keeps tensors it cannot free', () => fails(momentum({ keepsTensor: true }), /still holds 1 tensor\(s\)/));
  it('fails a definition of another kind', () =>
    expect(checkOptimizer({ ...momentum(), kind: 'optimizee' } as ComponentDefinition)).rejects.toThrow(/kind must be "optimizer"/));
});
