import { coreComponents } from '../pipeline/core-components';
import { defineComponent } from '../registry/component';
import { ComponentRegistry } from '../registry/registry';
import { jsonDepth, parseExperiment, resolveExperiment } from './experiment';
import { estimateRunMemory, memoryLimit, preflightProblems } from './preflight';

const closed = { type: 'object', additionalProperties: false, properties: { n: { type: 'integer', minimum: 1, default: 10, description: 'Size.' } } };
const registry = new ComponentRegistry([
  coreComponents,
  {
    source: 'test',
    components: [
      defineComponent<{ n: number }>()({
        kind: 'optimizee',
        type: 'sized',
        description: 'A family of n coordinates holding n² floats.',
        schema: closed,
        create: () => {
          throw new Error('the pre-flight builds nothing');
        },
        estimate: ({ n }) => ({ coordinates: n, bytes: 4 * n * n, stepBytes: 8 * n }),
      }),
      defineComponent<{ n: number }>()({
        kind: 'meta-optimizer',
        type: 'sized-meta',
        description: 'A learned optimizer of n weights, 5 floats of state and 7 taped per coordinate.',
        schema: closed,
        create: () => {
          throw new Error('the pre-flight builds nothing');
        },
        estimate: ({ n }) => ({ weights: n, stateBytes: 20, stepBytes: 28 }),
      }),
      defineComponent<{ n: number }>()({
        kind: 'meta-optimizer',
        type: 'fused-meta',
        description: 'sized-meta with a fused kernel that keeps 12 bytes per coordinate and step.',
        schema: closed,
        create: () => {
          throw new Error('the pre-flight builds nothing');
        },
        estimate: ({ n }) => ({ weights: n, stateBytes: 20, stepBytes: 28, fusedStepBytes: 12 }),
      }),
    ],
  },
]);

const experiment = (n: number, m: number, training: object = {}, backend = 'wasm', meta = 'sized-meta') =>
  resolveExperiment(
    parseExperiment({ backend, optimizee: { type: 'sized', options: { n } }, metaOptimizer: { type: meta, options: { n: m } }, training: { steps: 100, unroll: 20, ...training }, evaluation: { baselines: [] } }, 'x.json'),
    registry,
    'x.json',
  );

describe('the pre-flight', () => {
  it('adds up the components\' lower bounds as derived by hand', () => {
    // train: task 4·100² + 4 copies of 50 weights ·4 B + 100 coordinates · (20 B state + 20 steps · (28 + 4) B) + 20 steps · 800 B
    const { train, evaluation } = estimateRunMemory(experiment(100, 50), registry);
    expect(train).toBe(40_000 + 800 + 100 * (20 + 20 * 32) + 20 * 800);
    // eval: the task, the weights, per coordinate max(state, 3 floats) and the parameter, one step
    expect(evaluation).toBe(40_000 + 200 + 100 * (20 + 4) + 800);
  });

  it('counts one segment of the tape with gradient checkpointing, and a chunk of coordinates per worker', () => {
    const plain = estimateRunMemory(experiment(100, 50), registry).train!;
    const segmented = estimateRunMemory(experiment(100, 50, { checkpointEvery: 5 }), registry).train!;
    // 5 taped steps instead of 20, and a carry per segment boundary (4 of them)
    expect(plain - segmented).toBe(100 * (15 * 32 - 4 * 20) + 15 * 800);
    const workers = estimateRunMemory(experiment(100, 50, { workers: 4 }), registry).train!;
    expect(workers).toBe(40_000 + 800 + 25 * (20 + 20 * 32) + 20 * 800);
  });

  it('counts no tape with a fused kernel: its bytes per step, the state twice, one untaped optimizee step', () => {
    const fused = estimateRunMemory(experiment(100, 50, {}, 'wasm', 'fused-meta'), registry).train!;
    // task + 4 copies of 50 weights + 100 coordinates · (2 · 20 B state + 20 steps · 12 B + 2 floats) + one step of 800 B
    expect(fused).toBe(40_000 + 800 + 100 * (40 + 240 + 8) + 800);
    // The tape again where the kernel does not run.
    expect(estimateRunMemory(experiment(100, 50, { kernel: 'tfjs' }, 'wasm', 'fused-meta'), registry).train).toBe(40_000 + 800 + 100 * (20 + 20 * 32) + 20 * 800);
    expect(estimateRunMemory(experiment(100, 50, { secondDerivatives: true }, 'wasm', 'fused-meta'), registry).train).toBe(40_000 + 800 + 100 * (20 + 20 * 32) + 20 * 800);
    // An unroll of 5,000 on 20,000 coordinates (task 1.6 GB): 3.2 GB more on the tape, refused; 1.2 GB on the kernel.
    const long = { steps: 5000, unroll: 5000 };
    expect(preflightProblems(experiment(20_000, 50, long, 'wasm', 'fused-meta'), registry, 'x.json', 'train')).toEqual([]);
    expect(preflightProblems(experiment(20_000, 50, { ...long, kernel: 'tfjs' }, 'wasm', 'fused-meta'), registry, 'x.json', 'train')).toHaveLength(1);
  });

  it('counts no tape for ES and PES: their runs alive at once, and the weights\' copies and accumulators', () => {
    // ES: task + 50 weights · 7 floats (φ, Adam's 2 moments, a perturbed φ, the noise, the float64 sums) + 2 runs ·
    // 100 coordinates · (20 B state + 2 floats) + one step of 800 B.
    const es = estimateRunMemory(experiment(100, 50, { estimator: { type: 'es' } }), registry).train!;
    expect(es).toBe(40_000 + 50 * 4 * 7 + 2 * 100 * 28 + 800);
    // PES with 3 particle pairs: 7 runs, and 3 float64 accumulators of noise.
    const pes = estimateRunMemory(experiment(100, 50, { estimator: { type: 'pes', options: { samples: 3 } } }), registry).train!;
    expect(pes).toBe(40_000 + 50 * 4 * (7 + 6) + 7 * 100 * 28 + 800);
    // The default 4 pairs: 9 runs.
    expect(estimateRunMemory(experiment(100, 50, { estimator: { type: 'pes' } }), registry).train).toBe(40_000 + 50 * 4 * 15 + 9 * 100 * 28 + 800);
    // An unroll of 5,000 on 20,000 coordinates, refused on tbptt's tape, fits with ES (no tape, no kernel).
    const long = { steps: 5000, unroll: 5000 };
    expect(preflightProblems(experiment(20_000, 50, long), registry, 'x.json', 'train')).toHaveLength(1);
    expect(preflightProblems(experiment(20_000, 50, { ...long, estimator: { type: 'es' } }), registry, 'x.json', 'train')).toEqual([]);
  });

  it('refuses what exceeds the wasm heap, for training and evaluation, naming both', () => {
    expect(preflightProblems(experiment(100, 50), registry, 'x.json', 'all')).toEqual([]);
    const problems = preflightProblems(experiment(40_000, 50), registry, 'x.json', 'all');
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^x\.json: meta-training sized \{"n":40000\} with sized-meta \{"n":50\} would need at least 5\.\d+ GiB of memory \(unroll 20\), more than the wasm backend's 4\.00 GiB heap/);
    expect(problems[1]).toMatch(/^x\.json: evaluating on .* would need at least 5\.\d+ GiB/);
    expect(preflightProblems(experiment(40_000, 50), registry, 'x.json', 'eval')).toHaveLength(1);
    expect(memoryLimit('cpu').what).toMatch(/this machine's .* of RAM/);
  });
});

describe('jsonDepth', () => {
  it('counts brackets outside strings, escapes included', () => {
    expect(jsonDepth('{"a": [1, {"b": "]]]\\"[[["}]}')).toBe(3);
    expect(jsonDepth('1')).toBe(0);
    expect(jsonDepth('['.repeat(1000) + ']'.repeat(1000))).toBe(1000);
  });
});
