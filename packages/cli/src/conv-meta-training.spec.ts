import { ComponentRegistry, MetaTrainer, createContainer, resolveTrainingOptions, useBackend } from '@l2l/core';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';

/** Issue 11: a short meta-training run of the LSTM on a small conv net (real MNIST, wasm) lowers the held-out meta-objective. */
describe('meta-training the LSTM on a small conv net', () => {
  it('lowers the validation loss within a few epochs', async () => {
    await useBackend('wasm');
    const registry = createContainer(optimizeesModule, metaOptimizersModule).get(ComponentRegistry);
    const ctx = { seed: 0, baseDir: process.cwd() };
    const family = registry.create(
      'optimizee',
      { type: 'conv-net', options: { layers: 1, channels: 4, kernelSize: 3, dense: [], batchSize: 16, trainExamples: 2000, testExamples: 200 } },
      ctx,
    );
    const lstm = registry.create('meta-optimizer', { type: 'lstm', options: { hidden: 8 } }, ctx);
    const training = resolveTrainingOptions({ epochs: 5, episodesPerEpoch: 2, steps: 16, unroll: 4, learningRate: 0.02, validationTasks: 3, validateEvery: 100 });
    const trainer = new MetaTrainer(family, lstm, training, 0);
    const before = await trainer.validate();
    const reports = [];
    for (let e = 0; e < training.epochs; e++) reports.push(await trainer.trainEpoch());
    const after = await trainer.validate();
    expect(Number.isFinite(before)).toBe(true);
    expect(after).toBeLessThan(0.9 * before);
    trainer.dispose();
    lstm.dispose();
    family.dispose?.();
  });
});
