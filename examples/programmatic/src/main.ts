import * as tf from '@tensorflow/tfjs-core';
import {
  ComponentRegistry, MetaTrainer, Rng, VariableOptimizer, componentsModule, createContainer, defineComponent,
  deriveSeed, evaluateOptimizer, resolveTrainingOptions, useBackend, type TaskFamily,
} from '@l2l/core';
import { baselinesModule } from '@l2l/baselines';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';

// A task family of your own: f(x) = Σ a ⊙ (x − b)², with a and b drawn per task.
const parabolas = defineComponent<{ dims: number }>()({
  kind: 'optimizee',
  type: 'parabolas',
  description: 'Random separable parabolas',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { dims: { type: 'integer', minimum: 1, default: 8, description: 'Number of coordinates' } },
  },
  create: ({ dims }): TaskFamily => ({
    type: 'parabolas',
    sample: (seed, split) => ({ family: 'parabolas', split, seed: deriveSeed(seed, split) }),
    build: (config) => {
      const rng = new Rng(config.seed);
      const a = tf.tensor1d(rng.uniforms(dims, 0.5, 2));
      const b = tf.tensor1d(rng.normals(dims));
      return {
        config,
        initParams: (seed) => ({ x: tf.tensor1d(new Rng(seed).normals(dims)) }),
        batch: () => ({}),
        loss: (p) => tf.tidy(() => tf.sum(tf.mul(a, tf.square(tf.sub(p.x!, b))))),
        dispose: () => tf.dispose([a, b]),
      };
    },
  }),
});

export async function main(log: (line: string) => void = console.log) {
  log((await useBackend('wasm')).name);
  const container = createContainer(optimizeesModule, metaOptimizersModule, baselinesModule,
    componentsModule({ source: 'my-app', components: [parabolas] }));
  const registry = container.get(ComponentRegistry);
  const ctx = { seed: 0, baseDir: process.cwd() };
  const family = registry.create('optimizee', { type: 'parabolas' }, ctx);
  const lstm = registry.create('meta-optimizer', { type: 'lstm', options: { hidden: 10 } }, ctx);
  const adam = registry.create('optimizer', { type: 'adam', options: { learningRate: 0.1 } }, ctx);

  const training = resolveTrainingOptions({ epochs: 4, episodesPerEpoch: 4, steps: 40, unroll: 10 });
  const trainer = new MetaTrainer(family, lstm, training, 0);
  for (let epoch = 0; epoch < training.epochs; epoch++) {
    const report = await trainer.trainEpoch();
    log(`epoch ${report.epoch}: meta-loss ${report.metaLoss.toFixed(3)}`);
  }
  for (const [name, optimizer] of [['lstm', lstm.optimizer()], ['adam', adam]] as const) {
    const result = evaluateOptimizer(family, optimizer, name, { steps: 40, tasks: 20, seed: 1 });
    log(`${name}: final loss ${result.final.mean.toFixed(4)} ± ${result.final.std.toFixed(4)}`);
  }

  // The trained optimizer on your own variables (a tfjs-layers model: new VariableOptimizer(..., model.trainableWeights)).
  const x = tf.variable(tf.tensor1d([3, -2, 1]));
  const opt = new VariableOptimizer(lstm.optimizer(), [x]);
  for (let step = 0; step < 30; step++) opt.minimize(() => tf.sum(tf.square(tf.sub(x, 1))));
  log(`x after 30 learned steps: ${Array.from(x.dataSync()).map((v) => v.toFixed(2)).join(', ')}`);

  opt.dispose();
  x.dispose();
  trainer.dispose();
  lstm.dispose();
}
