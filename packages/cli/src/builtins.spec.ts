import { useBackend } from '@l2l/core';
import { checkComponent, type CheckOptions } from '@l2l/core/testing';
import { createWorkspace } from './workspace';

/** Every component the CLI ships with honours its contract (the checks plugin authors run on theirs). */
const { registry } = createWorkspace();

// Image families on a few dozen MNIST rows: the checks run fullLoss and metrics 4 times per task (3 tasks), and
// with the defaults these read every image of the split (50,000 training rows) and of the test file (10,000)
// through the network on the cpu backend: more than 14 minutes. Here they read at most 64 images, twice per task.
const images = { trainExamples: 64, heldOutExamples: 32, testExamples: 64 };
const small: Record<string, CheckOptions & { samples?: number; repeats?: number }> = {
  'mnist-mlp': { options: { trainExamples: 256, testExamples: 128, batchSize: 16 }, samples: 5 },
  'conv-net': { options: { ...images, layers: 2, channels: 4, dense: [8], batchSize: 8 }, samples: 5, repeats: 1 },
  // A small canvas and few channels: tfjs's cpu Conv2DBackpropFilter reads every element through
  // TensorBuffer.get (measured 3.4 s for one 5×5×20×20 kernel gradient on 2 images of 21², where the
  // forward conv took 0.06 s), so the defaults (42² canvas, 20 channels, batches of 128) take minutes here.
  stn: { options: { ...images, canvas: 28, outputSize: 14, locLayers: 1, locChannels: 4, locHidden: 8, channels: 4, batchSize: 8 }, samples: 5, repeats: 1 },

  lstm: { options: { hidden: 4 } },
  // One group, "all": the checks' quadratics report no groups. Its groups are built through the registry.
  'per-group': {
    options: { groups: { all: { type: 'lstm', options: { hidden: 4 } } } },
    ctx: { createNested: (kind, config, label) => registry.create(kind, config, { seed: 0, baseDir: process.cwd() }, '', label) },
  },
};

describe('built-in components', () => {
  beforeAll(() => useBackend('cpu'));

  it('are registered', () => {
    expect(registry.list().length).toBeGreaterThan(0);
  });

  it.each(registry.list().map((c) => [`${c.kind} "${c.type}"`, c] as const))('%s honours its contract', async (_name, c) => {
    const options = small[c.type] ?? {};
    await checkComponent(c, options);
  });
});
