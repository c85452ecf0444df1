import { ComponentRegistry, MetaTrainer, createContainer, resolveTrainingOptions, useBackend } from '@l2l/core';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';

/** Issue 4: a short meta-training run of the LSTM on a small MLP on real MNIST lowers the held-out meta-objective. */
describe('meta-training the LSTM on MNIST', () => {
  it('lowers the validation loss within a few epochs', async () => {
    await useBackend('wasm');
    const registry = createContainer(optimizeesModule, metaOptimizersModule).get(ComponentRegistry);
    const ctx = { seed: 0, baseDir: process.cwd() };
    const family = registry.create('optimizee', { type: 'mnist-mlp', options: { hidden: [8], batchSize: 32, trainExamples: 2000, testExamples: 500 } }, ctx);
    const lstm = registry.create('meta-optimizer', { type: 'lstm', options: { hidden: 8 } }, ctx);
    const training = resolveTrainingOptions({ epochs: 6, episodesPerEpoch: 3, steps: 20, unroll: 5, learningRate: 0.02, validationTasks: 4, validateEvery: 100 });
    const trainer = new MetaTrainer(family, lstm, training, 0);
    const before = await trainer.validate();
    const reports = [];
    for (let e = 0; e < training.epochs; e++) reports.push(await trainer.trainEpoch());
    const after = await trainer.validate();
    expect(Number.isFinite(before)).toBe(true);
    expect(after).toBeLessThan(0.9 * before);
    expect(reports[reports.length - 1]!.metaLoss).toBeLessThan(reports[0]!.metaLoss);
    trainer.dispose();
    lstm.dispose();
    family.dispose?.();
  });
});
