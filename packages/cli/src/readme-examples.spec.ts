import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fitWithLearnedOptimizer } from '../../../examples/programmatic/src/fit';
import { main } from '../../../examples/programmatic/src/main';

/**
 * The README's "In your own code" example is examples/programmatic/src/main.ts verbatim (so `pnpm test`
 * type-checks it); this runs it.
 */
describe('README example', () => {
  it('is the file examples/programmatic/src/main.ts, word for word', () => {
    const root = path.join(__dirname, '..', '..', '..');
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const block = /```ts readme-example\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(fs.readFileSync(path.join(root, 'examples', 'programmatic', 'src', 'main.ts'), 'utf8'));
  });

  it('runs: registers a family, meta-trains, evaluates, trains a variable with the learned optimizer', async () => {
    const lines: string[] = [];
    await main((line) => lines.push(line));
    expect(lines[0]).toBe('wasm');
    expect(lines.filter((l) => /^epoch \d: meta-loss [0-9.]+$/.test(l))).toHaveLength(4);
    const final = (name: string) => Number(new RegExp(`^${name}: final loss ([0-9.]+) ± [0-9.]+$`).exec(lines.find((l) => l.startsWith(name))!)![1]);
    expect(Number.isFinite(final('lstm'))).toBe(true);
    expect(Number.isFinite(final('adam'))).toBe(true);
    const x = /^x after 30 learned steps: (.*)$/.exec(lines[lines.length - 1]!)![1]!.split(', ').map(Number);
    // Started at distance √13 from the minimum (1, 1, 1): the learned optimizer must have moved towards it.
    expect(Math.hypot(...x.map((v) => v - 1))).toBeLessThan(Math.hypot(2, -3, 0) / 2);
  });

  it('"Use a learned optimizer in model.fit" is examples/programmatic/src/fit.ts, word for word, and the pretrained learned optimizer fits with it', async () => {
    const root = path.join(__dirname, '..', '..', '..');
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const block = /```ts readme-example-fit\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(fs.readFileSync(path.join(root, 'examples', 'programmatic', 'src', 'fit.ts'), 'utf8'));
    const xs = tf.randomNormal([128, 3], 0, 1, 'float32', 5) as tf.Tensor2D;
    const ys = tf.tidy(() => tf.sum(tf.mul(xs, tf.tensor1d([1, -2, 0.5])), 1, true)) as tf.Tensor2D;
    const { model, history } = await fitWithLearnedOptimizer(xs, ys);
    const losses = history.history.loss as number[];
    expect(losses).toHaveLength(20);
    expect(losses[19]).toBeLessThan(losses[0]! / 2);
    model.optimizer.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  });
});
