import Ajv from 'ajv';
import { defineComponent } from '../registry/component';
import { ComponentRegistry } from '../registry/registry';
import { isUserError } from '../errors';
import { ConfigError, errorProblems } from '../schema/validate';
import { componentProblemsOf, fullExperimentSchema, parseExperiment, pluginEntriesOf, resolveExperiment } from './experiment';

const closed = (properties: object) => ({ type: 'object', additionalProperties: false, properties });
const registry = new ComponentRegistry([
  {
    source: 'spec',
    components: [
      defineComponent<{ dims: number }>()({
        kind: 'optimizee',
        type: 'bowl',
        description: 'Bowls',
        schema: closed({ dims: { type: 'integer', minimum: 1, default: 2, description: 'Coordinates' } }),
        create: () => ({}) as never,
      }),
      defineComponent<{ learningRate: number }>()({
        kind: 'optimizer',
        type: 'sgd',
        description: 'SGD',
        schema: closed({ learningRate: { type: 'number', exclusiveMinimum: 0, default: 0.1, description: 'Step size' } }),
        create: () => ({}) as never,
      }),
    ],
  },
]);

describe('experiment config', () => {
  it('rejects unknown fields in a baseline (options must go under "options")', () => {
    expect(() => parseExperiment({ optimizee: { type: 'bowl' }, evaluation: { baselines: [{ type: 'sgd', learningRate: 1 }] } }, 'exp.json')).toThrow(
      'exp.json: unknown field "evaluation.baselines[0].learningRate" (known: type, options)',
    );
  });

  it('reports every component problem at once, one per line in `problems`', () => {
    const config = parseExperiment(
      { optimizee: { type: 'bowl', options: { dims: 'x', extra: 1 } }, evaluation: { baselines: [{ type: 'sgd', options: { learningRate: 0 } }, { type: 'adamw' }] } },
      'exp.json',
    );
    let error: unknown;
    try {
      resolveExperiment(config, registry, 'exp.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(isUserError(error)).toBe(true);
    expect(errorProblems(error)).toEqual([
      'exp.json: optimizee "bowl": unknown field "extra" (known: dims)',
      'exp.json: optimizee "bowl": dims must be an integer ≥ 1, got "x"',
      'exp.json: evaluation.baselines[0] (optimizer "sgd"): learningRate must be a number > 0, got 0',
      'exp.json: evaluation.baselines[1]: unknown optimizer type "adamw" (known: sgd)',
    ]);
  });

  it('throws a single problem as it is', () => {
    const config = parseExperiment({ optimizee: { type: 'bowl', options: { dims: 0 } }, evaluation: { baselines: [] } }, 'exp.json');
    expect(() => resolveExperiment(config, registry, 'exp.json')).toThrow('exp.json: optimizee "bowl": dims must be an integer ≥ 1, got 0');
  });

  it('lists component option problems of a config whose shape is invalid, one per component field', () => {
    const raw = {
      optimzee: {},
      training: { epochs: 0 },
      optimizee: { type: 'bowl', options: { dims: 0 } },
      metaOptimizer: { type: 'from-a-plugin', options: { x: 1 } },
      evaluation: { baselines: [{ type: 'sgd', options: { learningRate: -1 } }, 'adam', { type: 'sgd', options: [1] }] },
    };
    expect(() => parseExperiment(raw, 'exp.json')).toThrow(/unknown field "optimzee"/);
    // What the shape check reports itself (a baseline that is a string, options that are an array) is left to it.
    expect(componentProblemsOf(raw, registry, 'exp.json')).toEqual([
      'exp.json: optimizee "bowl": dims must be an integer ≥ 1, got 0',
      'exp.json: metaOptimizer: unknown meta-optimizer type "from-a-plugin"',
      'exp.json: evaluation.baselines[0] (optimizer "sgd"): learningRate must be a number > 0, got -1',
    ]);
    // A plugin that could not be loaded: its components are not checked, not called unknown.
    expect(componentProblemsOf(raw, registry, 'exp.json', { skipUnknownTypes: true })).toHaveLength(2);
    expect(componentProblemsOf([raw], registry, 'exp.json')).toEqual([]);
    expect(componentProblemsOf({ optimizee: 'bowl' }, registry, 'exp.json')).toEqual([]);
  });

  it('reads a raw config\'s plugin entries only when that field is valid', () => {
    expect(pluginEntriesOf({})).toEqual([]);
    expect(pluginEntriesOf({ plugins: ['a', ['b', { level: 1 }]], optimzee: 1 })).toEqual(['a', ['b', { level: 1 }]]);
    expect(pluginEntriesOf({ plugins: 'a' })).toBeUndefined();
    expect(pluginEntriesOf({ plugins: [3] })).toBeUndefined();
    expect(pluginEntriesOf(null)).toBeUndefined();
  });

  it('builds a valid JSON Schema even when a kind has no component', () => {
    const schema = fullExperimentSchema(registry);
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(schema);
    expect(validate({ optimizee: { type: 'bowl', options: { dims: 3 } }, metaOptimizer: { type: 'anything' } })).toBe(true);
    expect(validate({ optimizee: { type: 'bowl', options: { dims: 0 } } })).toBe(false);
    expect(validate({ optimizee: { type: 'cone' } })).toBe(false);
  });
});

describe('readJsonFile', () => {
  it('says plainly why a file cannot be read', () => {
    const { readJsonFile } = require('./experiment') as typeof import('./experiment');
    expect(() => readJsonFile('/no/such/exp.json')).toThrow('/no/such/exp.json: cannot read: no such file');
    expect(() => readJsonFile(__dirname)).toThrow(`${__dirname}: cannot read: is a directory`);
  });
});
