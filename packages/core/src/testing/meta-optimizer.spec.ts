import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, Rng, useBackend, type ComponentDefinition, type MetaOptimizer, type NamedTensors, type Optimizer } from '../index';
import { checkMetaOptimizer, ContractError } from './index';

interface Options {
  learningRate: number;
  momentum: number;
}

interface Breakage {
  notDifferentiable?: 'all' | 'lr';
  weightsAreVariables?: boolean;
  setIgnored?: boolean;
  laxSet?: boolean;
  configWithoutDefaults?: boolean;
  disposeForgets?: boolean;
  leakyUpdate?: boolean;
  /** Claims coordinatewise (and is, unless `globalScale`). */
  coordinatewise?: boolean;
  /** Divides the gradients by their mean magnitude over all coordinates: not coordinatewise. */
  globalScale?: boolean;
  /** optimizer(weights) reads the variables anyway. */
  ignoresGivenWeights?: boolean;
  /** optimizer(weights) assigns the weights to the variables. */
  assignsGivenWeights?: boolean;
}

/**
 * A tiny learned optimizer: p ← p − exp(logLr)·(k₀·g + k₁·m), m ← μ·m + g, with weights `lr/log` and
 * `mix/kernel`; optional defects.
 */
function learned(broken: Breakage = {}): ComponentDefinition<'meta-optimizer', Options> {
  const def = defineComponent<Options>()({
    kind: 'meta-optimizer',
    type: 'spec-learned',
    description: 'Test learned optimizer',
    schema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.1, description: 'Initial step size' },
        momentum: { type: 'number', minimum: 0, maximum: 1, default: 0.5, description: 'Momentum of the m feature' },
      },
    },
    create: (options, ctx): MetaOptimizer => {
      const rng = Rng.from(ctx.seed, 'spec-learned');
      const variables = tf.tidy(() => ({
        'lr/log': tf.variable(tf.scalar(Math.log(options.learningRate))),
        'mix/kernel': tf.variable(tf.tensor1d([1 + 0.1 * rng.normal(), 0.1 * rng.normal()])),
      }));
      const optimizer = (given?: Readonly<Record<string, tf.Tensor>>): Optimizer => {
        if (given) {
          for (const [n, v] of Object.entries(variables)) {
            if (given[n]?.shape.join(',') !== v.shape.join(',')) throw new Error(`"${n}": missing or of the wrong shape`);
            if (broken.assignsGivenWeights) (v as tf.Variable).assign(given[n]!);
          }
        }
        const w = (given && !broken.ignoresGivenWeights ? given : variables) as typeof variables;
        return {
        name: 'spec-learned',
        init: (params) => ({
          params: Object.fromEntries(Object.entries(params).map(([n, p]) => [n, tf.clone(p)])),
          slots: Object.fromEntries(Object.keys(params).map((n) => [n, tf.zerosLike(params[n]!)])),
          step: 0,
        }),
        update: (state, grads) => {
          if (broken.leakyUpdate) tf.keep(tf.scalar(0));
          const out = tf.tidy(() => {
            const all = Object.values(grads);
            const scale = broken.globalScale
              ? tf.div(tf.addN(all.map((g) => tf.sum(tf.abs(g)))), all.reduce((n, g) => n + g.size, 0))
              : tf.scalar(1);
            const lr = broken.notDifferentiable ? tf.scalar(Math.exp(w['lr/log'].dataSync()[0]!)) : tf.exp(w['lr/log']);
            const [k0, k1] = broken.notDifferentiable === 'all' ? [tf.scalar(1), tf.scalar(0)] : tf.unstack(w['mix/kernel']);
            const params: NamedTensors = {};
            const slots: NamedTensors = {};
            for (const [n, p] of Object.entries(state.params)) {
              const m = tf.add(tf.mul((state.slots as NamedTensors)[n]!, options.momentum), grads[n]!);
              slots[n] = m;
              params[n] = tf.sub(p, tf.mul(lr, tf.add(tf.mul(k0!, tf.div(grads[n]!, scale)), tf.mul(k1!, m))));
            }
            return { params, slots };
          });
          return { ...out, step: state.step + 1 };
        },
        };
      };
      return {
        type: 'spec-learned',
        ...(broken.coordinatewise && { coordinatewise: true }),
        variables,
        config: () => ({ type: 'spec-learned', options: broken.configWithoutDefaults ? {} : { ...options } }),
        getWeights: () =>
          broken.weightsAreVariables ? { ...variables } : Object.fromEntries(Object.entries(variables).map(([n, v]) => [n, tf.clone(v)])),
        setWeights: (weights) => {
          if (broken.setIgnored) return;
          const names = Object.keys(variables) as Array<keyof typeof variables>;
          if (!broken.laxSet) {
            const given = Object.keys(weights).sort().join(',');
            if (given !== [...names].sort().join(',')) throw new Error(`expected weights ${names.join(', ')}, got ${given}`);
          }
          for (const n of names) {
            const w = weights[n];
            if (!w) continue;
            if (!broken.laxSet && w.shape.join(',') !== variables[n].shape.join(',')) throw new Error(`"${n}": wrong shape [${w.shape}]`);
            if (w.shape.join(',') === variables[n].shape.join(',')) (variables[n] as tf.Variable).assign(w);
          }
        },
        optimizer,
        dispose: () => {
          if (!broken.disposeForgets) Object.values(variables).forEach((v) => v.dispose());
        },
      };
    },
  });
  return def;
}

const fails = (def: ComponentDefinition, pattern: RegExp) => expect(checkMetaOptimizer(def)).rejects.toThrow(pattern);

describe('checkMetaOptimizer', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('passes a correct meta-optimizer, and leaves no tensor behind', async () => {
    const before = tf.memory().numTensors;
    await checkMetaOptimizer(learned());
    await checkMetaOptimizer(learned(), { options: { momentum: 0.9 }, unroll: 4, ctx: { seed: 7 } });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('throws a ContractError naming the component', async () => {
    const e = await checkMetaOptimizer(learned({ notDifferentiable: 'all' })).catch((x) => x);
    expect(e).toBeInstanceOf(ContractError);
    expect(e.message).toMatch(/^checkMetaOptimizer\(meta-optimizer "spec-learned"\): /);
  });

  it('fails an update that is not differentiable in the weights', async () => {
    await fails(learned({ notDifferentiable: 'all' }), /"lr\/log", "mix\/kernel" get no gradient through a 2-step unroll/);
    await fails(learned({ notDifferentiable: 'lr' }), /variable\(s\) "lr\/log" get no gradient through a 2-step unroll: optimizer\(\) must use the variables themselves/);
  });
  it('fails getWeights that returns the variables', () => fails(learned({ weightsAreVariables: true }), /getWeights\(\)\["lr\/log"\] is a variable, not a copy/));
  it('fails setWeights that assigns nothing', () => fails(learned({ setIgnored: true }), /does not give w back/));
  it('fails setWeights that accepts wrong names', () => fails(learned({ laxSet: true }), /setWeights accepted weights without "lr\/log"/));
  it('fails a config without its defaults', () => fails(learned({ configWithoutDefaults: true }), /config\(\)\.options must have every default applied/));
  it('fails a dispose that keeps the variables', () => fails(learned({ disposeForgets: true }), /dispose\(\) left variable "lr\/log" allocated/));
  it('fails an update that leaks', () => fails(learned({ leakyUpdate: true }), /leaked 3 tensor\(s\)/));
  it('fails optimizer(weights) that reads the variables instead', () => fails(learned({ ignoresGivenWeights: true }), /optimizer\(weights\) gives the updates of the variables, not of the weights given/));
  it('fails optimizer(weights) that touches the live weights', () => fails(learned({ assignsGivenWeights: true }), /optimizer\(weights\) changed the variables/));
  it('passes a coordinatewise claim that holds, and fails one that does not', async () => {
    const before = tf.memory().numTensors;
    await checkMetaOptimizer(learned({ coordinatewise: true }));
    // Not claimed: not checked.
    await checkMetaOptimizer(learned({ globalScale: true }));
    expect(tf.memory().numTensors).toBe(before);
    await fails(
      learned({ coordinatewise: true, globalScale: true }),
      /claims coordinatewise, but coordinates 0\.\.3 of \{w: \[3, 2\], b: \[4\]\} updated on their own as \{a: \[4\]\} differ from the update of all 10: after step 1, coordinate 0 is -?[0-9.e-]+ on its own and -?[0-9.e-]+ with the others/,
    );
  });
});
