import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../backend';
import { readSnapshot, resolveSnapshotDir, writeSnapshot } from './checkpoint';
import { readWeights, writeWeights } from './weights-io';

let dir: string;
beforeAll(async () => {
  await useBackend('cpu');
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-ckpt-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('weights files', () => {
  it('round-trip named tensors exactly, with names sorted in the manifest', () => {
    const w = { 'lstm0/kernel': tf.tensor2d([[1.5, -2], [3e-8, 4]]), 'output/kernel': tf.tensor1d([7]), count: tf.scalar(3, 'int32') };
    writeWeights(dir, 'weights', w);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'weights.json'), 'utf8'));
    expect(manifest.weights.map((x: { name: string }) => x.name)).toEqual(['count', 'lstm0/kernel', 'output/kernel']);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBe(4 * (1 + 4 + 1));
    const back = readWeights(dir, 'weights');
    for (const [k, t] of Object.entries(w)) {
      expect(back[k]!.shape).toEqual(t.shape);
      expect(back[k]!.dtype).toBe(t.dtype);
      expect(Array.from(back[k]!.dataSync())).toEqual(Array.from(t.dataSync()));
    }
    tf.dispose([...Object.values(w), ...Object.values(back)]);
  });

  it('reject a truncated binary file, naming it', () => {
    const w = { a: tf.tensor1d([1, 2, 3]) };
    writeWeights(dir, 'weights', w);
    fs.truncateSync(path.join(dir, 'weights.bin'), 8);
    expect(() => readWeights(dir, 'weights')).toThrow(`${path.join(dir, 'weights.bin')}: expected 12 bytes for the weights in weights.json, found 8`);
    tf.dispose(w.a);
  });
});

describe('snapshots', () => {
  it('replace the previous one whole, and leave it intact when writing fails', () => {
    const one = { a: tf.tensor1d([1]) };
    writeSnapshot(dir, 'latest', { metaOptimizer: { type: 'x', options: {} }, weights: one });
    const bad = { a: tf.tensor1d([2]), b: tf.tensor1d([true as unknown as number], 'bool') };
    expect(() => writeSnapshot(dir, 'latest', { metaOptimizer: { type: 'x', options: {} }, weights: bad })).toThrow(/dtype bool cannot be saved/);
    expect(fs.readdirSync(dir)).toEqual(['latest']); // no temporary directory left behind
    const kept = readSnapshot(dir, 'latest');
    expect(Array.from(kept.weights.a!.dataSync())).toEqual([1]);
    const two = { a: tf.tensor1d([2]) };
    writeSnapshot(dir, 'latest', { metaOptimizer: { type: 'x', options: {} }, weights: two });
    const now = readSnapshot(dir, 'latest');
    expect(Array.from(now.weights.a!.dataSync())).toEqual([2]);
    expect(fs.readdirSync(dir)).toEqual(['latest']);
    tf.dispose([one.a, bad.a, bad.b, two.a, kept.weights.a!, now.weights.a!]);
  });

  it('resolve a run directory to best/, else latest/, and recover from a crash between the two renames', () => {
    const w = { a: tf.tensor1d([1]) };
    writeSnapshot(dir, 'latest', { metaOptimizer: { type: 'x', options: {} }, weights: w });
    expect(resolveSnapshotDir(dir)).toBe(path.join(dir, 'latest'));
    writeSnapshot(dir, 'best', { metaOptimizer: { type: 'x', options: {} }, weights: w });
    expect(resolveSnapshotDir(dir)).toBe(path.join(dir, 'best'));
    expect(resolveSnapshotDir(dir, 'latest')).toBe(path.join(dir, 'latest'));
    fs.renameSync(path.join(dir, 'latest'), path.join(dir, '.latest.old')); // as if stopped mid-replace
    expect(resolveSnapshotDir(dir, 'latest')).toBe(path.join(dir, '.latest.old'));
    expect(() => resolveSnapshotDir(path.join(dir, 'nothing'))).toThrow(/no checkpoint here/);
    tf.dispose(w.a);
  });
});
