import { Rng, useBackend, type MetaOptimizer } from '@l2l/core';
import { LstmMetaOptimizer } from '../lstm';
import { NormalizedHistoryMetaOptimizer } from '../normalized-history';
import { MAX_CHUNKS, tileChunks } from './tile-threads';

describe('tileChunks', () => {
  it('splits the tiles into at most 32 chunks of equal size (the last shorter), from the tile count alone', () => {
    expect(MAX_CHUNKS).toBe(32);
    expect(tileChunks(1, 16)).toEqual({ size: 1, count: 1 });
    expect(tileChunks(8, 16)).toEqual({ size: 1, count: 8 });
    expect(tileChunks(32, 16)).toEqual({ size: 1, count: 32 });
    expect(tileChunks(33, 16)).toEqual({ size: 2, count: 17 });
    // 15,910 coordinates (the MNIST MLP): 1,989 tiles in 32 chunks of 63, the last of 36.
    expect(tileChunks(1989, 86_000)).toEqual({ size: 63, count: 32 });
  });

  it('uses fewer chunks (at least 2) where their accumulators would pass 64 MiB', () => {
    expect(tileChunks(1000, 4 * 2 ** 20)).toEqual({ size: 63, count: 16 });
    expect(tileChunks(1000, 2 ** 30)).toEqual({ size: 500, count: 2 });
  });
});

describe('threads sharing chunks of tiles', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  // 1,003 coordinates: 126 tiles, 32 chunks of 4 (the last of 2).
  it.each([
    ['lstm', () => new LstmMetaOptimizer({}, 3)],
    ['normalized-history', () => new NormalizedHistoryMetaOptimizer({}, 7)],
  ] as const)('%s: 2, 3 and 5 threads give bit-identical updates and meta-gradients, within rounding of one thread', (_, make) => {
    const n = 1003;
    const U = 4;
    const rng = new Rng(1);
    const grads = Array.from({ length: U }, () => Float32Array.from(rng.normals(n, 0, 0.01)));
    const adjoints = Array.from({ length: U }, () => Float32Array.from(rng.normals(n, 0, 1)));
    const start = Float32Array.from(rng.normals(n, 0, 0.1));
    const meta: MetaOptimizer = make();
    try {
      const run = (threads: number) => {
        const r = meta.optimizer().fused!.open(n, { threads });
        try {
          const theta = start.slice();
          const out: number[] = [];
          for (let u = 0; u < 2; u++) {
            r.beginUnroll(U);
            for (const g of grads) r.step(g, theta);
            const gs = r.backward(adjoints);
            for (const k of Object.keys(gs).sort()) out.push(...gs[k]!);
          }
          return { theta: Array.from(theta), grads: out };
        } finally {
          r.dispose();
        }
      };
      const one = run(1);
      const two = run(2);
      expect(Math.max(...one.grads.map(Math.abs))).toBeGreaterThan(1e-4);
      // The forward pass is per tile: the same updates from any thread.
      expect(two.theta).toEqual(one.theta);
      two.grads.forEach((v, i) => expect(Math.abs(v - one.grads[i]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(one.grads[i]!))));
      for (const threads of [3, 5]) expect(run(threads)).toEqual(two);
    } finally {
      meta.dispose();
    }
  });
});
