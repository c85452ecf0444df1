import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, DEFAULT_PARAMETER_GROUP, parameterGroupsOf, Rng, useBackend, type ComponentDefinition, type JsonSchema, type NamedTensors, type Split, type Task, type TaskConfig, type TaskFamily } from '../index';
import { checkTaskFamily, ContractError } from './index';

interface BowlOptions {
  dims: number;
}

/** How a fixture family deviates from the correct one. */
interface Breakage {
  ignoreSplit?: boolean;
  /** Validation tasks drawn as test tasks. */
  validationIsTest?: boolean;
  randomSample?: boolean;
  leakyLoss?: boolean;
  unusedParam?: boolean;
  noDispose?: boolean;
  randomBatch?: boolean;
  nanLoss?: boolean;
  vectorLoss?: boolean;
  disposesParams?: boolean;
  /** Parameter groups the tasks report: a correct assignment, or one of the ways to get it wrong. */
  groups?: 'ok' | 'missing' | 'extra' | 'badName' | 'bySplit';
}

function groupsFor(kind: NonNullable<Breakage['groups']>, split: Split): Record<string, string> {
  switch (kind) {
    case 'ok':
      return { x: 'fc' };
    case 'missing':
      return {};
    case 'extra':
      return { x: 'fc', y: 'conv' };
    case 'badName':
      return { x: 'Conv Layer' };
    case 'bySplit':
      return { x: split === 'train' ? 'a' : 'b' };
  }
}

/** A bowl ‖x − c‖² + noise·x with a per-task centre c (held as a tensor) and a per-step noise batch. */
function bowl(broken: Breakage = {}, schemaOverride?: JsonSchema): ComponentDefinition<'optimizee', BowlOptions> {
  return defineComponent<BowlOptions>()({
    kind: 'optimizee',
    type: 'spec-bowl',
    description: 'Test bowls',
    schema: schemaOverride ?? {
      type: 'object',
      additionalProperties: false,
      properties: { dims: { type: 'integer', minimum: 1, default: 3, description: 'Coordinates' } },
    },
    create: ({ dims }): TaskFamily => ({
      type: 'spec-bowl',
      sample(seed: number, split: Split): TaskConfig {
        const rng = broken.ignoreSplit ? Rng.from(seed) : Rng.from(seed, broken.validationIsTest && split === 'validation' ? 'test' : split);
        const centre = Array.from(rng.uniforms(dims, -1, 1));
        if (broken.randomSample) centre[0] = Math.random();
        return { family: 'spec-bowl', split, seed, centre };
      },
      build(config: TaskConfig): Task {
        const c = tf.tensor1d(config.centre as number[]);
        return {
          config,
          initParams: (seed): NamedTensors => {
            const x = tf.tensor1d(Rng.from(seed, 'init').normals(dims));
            return broken.unusedParam ? { x, unused: tf.zeros([2]) } : { x };
          },
          batch: (step, seed) => ({
            noise: tf.tensor1d(broken.randomBatch ? Array.from({ length: dims }, Math.random) : Rng.from(seed, step).normals(dims, 0, 0.01)),
          }),
          loss: (params, batch) => {
            if (broken.leakyLoss) tf.keep(tf.scalar(1));
            if (broken.disposesParams) params.x!.dispose();
            const x = params.x!;
            if (broken.vectorLoss) return tf.square(tf.sub(x, c)) as unknown as tf.Scalar;
            const l = tf.add(tf.sum(tf.square(tf.sub(x, c))), tf.sum(tf.mul(batch.noise!, x)));
            return (broken.nanLoss ? tf.log(tf.neg(tf.add(l, 1))) : l) as tf.Scalar;
          },
          dispose: () => {
            if (!broken.noDispose) c.dispose();
          },
          ...(broken.groups ? { parameterGroups: () => groupsFor(broken.groups!, config.split) } : {}),
        };
      },
    }),
  });
}

const fails = (def: ComponentDefinition, pattern: RegExp) =>
  expect(checkTaskFamily(def, { samples: 10 })).rejects.toThrow(pattern);

describe('checkTaskFamily', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('passes a correct family, and leaves no tensor behind', async () => {
    const before = tf.memory().numTensors;
    await checkTaskFamily(bowl());
    await checkTaskFamily(bowl(), { options: { dims: 1 }, seeds: [3], samples: 5 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('throws a ContractError naming the component', async () => {
    const e = await checkTaskFamily(bowl({ leakyLoss: true })).catch((x) => x);
    expect(e).toBeInstanceOf(ContractError);
    expect(e.message).toMatch(/^checkTaskFamily\(optimizee "spec-bowl"\): /);
  });

  it('fails a loss that leaks a tensor', () => fails(bowl({ leakyLoss: true }), /3 loss\/gradient calls leaked \d+ tensor\(s\)/));
  it('fails a family whose tasks ignore the split', () => fails(bowl({ ignoreSplit: true }), /train and validation tasks coincide/));
  it('fails a family whose validation and test tasks coincide', () => fails(bowl({ validationIsTest: true }), /validation and test tasks coincide/));
  it('fails a non-deterministic sample', () => fails(bowl({ randomSample: true }), /sample\(0, "train"\) is not deterministic/));
  it('fails a non-deterministic batch', () => fails(bowl({ randomBatch: true }), /batch\(0, 0\) is not deterministic/));
  it('fails a parameter the loss ignores', () => fails(bowl({ unusedParam: true }), /does not depend .* "unused"/));
  it('passes a family whose tasks report parameter groups', async () => {
    await checkTaskFamily(bowl({ groups: 'ok' }), { samples: 5 });
  });
  it('fails parameter groups that miss a parameter', () => fails(bowl({ groups: 'missing' }), /parameterGroups\(\) threw: parameterGroups\(\) gives no group for parameter\(s\) "x"/));
  it('fails parameter groups that name a parameter the task lacks', () => fails(bowl({ groups: 'extra' }), /parameterGroups\(\) names "y", which initParams does not return/));
  it('fails a group name that is not kebab-case', () => fails(bowl({ groups: 'badName' }), /puts "x" in group "Conv Layer"; group names are kebab-case/));
  it('fails tasks of one family that report different groups', () => fails(bowl({ groups: 'bySplit' }), /parameter groups differ between tasks: \{"x":"a"\} for .*, \{"x":"b"\} for .*"split":"validation"/));
  it('fails a task whose dispose frees nothing', () => fails(bowl({ noDispose: true }), /left 2 more tensor\(s\) behind than the first time: dispose\(\) must free/));
  it('fails a non-finite loss', () => fails(bowl({ nanLoss: true }), /loss is not finite/));
  it('fails a loss that is not a scalar', () => fails(bowl({ vectorLoss: true }), /loss must return a scalar tensor, got shape \[3\]/));
  it('fails a loss that disposes its inputs', () => fails(bowl({ disposesParams: true }), /loss disposed parameter\(s\) "x"/));
  it('fails a schema that breaks the rules', () =>
    fails(bowl({}, { type: 'object', additionalProperties: false, properties: { dims: { type: 'integer', default: 3 } } }), /option "dims" has no description/));
  it('fails options the schema rejects', () =>
    expect(checkTaskFamily(bowl(), { options: { dims: 0 } })).rejects.toThrow(/dims must be an integer ≥ 1, got 0/));
  it('fails a definition of another kind', () =>
    expect(checkTaskFamily({ ...bowl(), kind: 'optimizer' } as ComponentDefinition)).rejects.toThrow(/kind must be "optimizee"/));
});

describe('parameterGroupsOf', () => {
  it('puts every parameter of a task without groups in the default group, and orders a task\'s groups by parameter name', () => {
    expect(parameterGroupsOf({}, ['b', 'a'])).toEqual({ b: DEFAULT_PARAMETER_GROUP, a: DEFAULT_PARAMETER_GROUP });
    expect(DEFAULT_PARAMETER_GROUP).toBe('all');
    expect(Object.keys(parameterGroupsOf({ parameterGroups: () => ({ a: 'fc', b: 'conv' }) }, ['b', 'a']))).toEqual(['b', 'a']);
    expect(() => parameterGroupsOf({ parameterGroups: () => ['conv'] as unknown as Record<string, string> }, ['a'])).toThrow(/must return an object of parameter name → group name/);
  });
});
