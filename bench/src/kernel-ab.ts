/**
 * In-process A/B of two builds of the fused kernels: the same synthetic unroll (forward steps, then the backward
 * pass) through build A and build B, alternating which goes first, in one process, so that both see the same
 * machine state; prints one JSON line with each side's median forward and backward time, the median of the
 * per-pair ratios B/A, and whether the two builds gave the same bits (updates and meta-gradients).
 *
 *     node packages/meta-optimizers/scripts/build-kernels.mjs --out /tmp/variant   # after editing assembly/
 *     git checkout packages/meta-optimizers/assembly
 *     node bench/dist/kernel-ab.js --a packages/meta-optimizers/wasm --b /tmp/variant [--pairs 15] [--n 15910]
 *         [--unroll 20] [--threads 1] [--optimizer lstm|rnnprop|normalized-history] [--wall]
 *
 * A and B are directories holding `<kernel>.<fma|simd>.wasm` files (the committed wasm/ is one; a directory may
 * hold only the kernel it changes, the committed builds fill in the rest). Each side loads
 * its own copy of @l2l/meta-optimizers' built files (dist/) with its wasm beside it, in
 * packages/meta-optimizers/.kernel-ab/ (removed afterwards), so the two share @l2l/core and tfjs. Two copies of
 * one build differ by up to about ±9 % in this harness on a busy 2-core machine: repeat with A and B swapped
 * before trusting a small ratio.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, useBackend, type FusedRun } from '@l2l/core';

const OPTIMIZERS = { lstm: 'LstmMetaOptimizer', rnnprop: 'RnnpropMetaOptimizer', 'normalized-history': 'NormalizedHistoryMetaOptimizer' } as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function positive(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} expects a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** A copy of the built package with `wasmDir`'s kernels, loaded; its directory is removed by the caller. */
function loadSide(root: string, name: string, wasmDir: string): Record<string, unknown> {
  const pkg = path.join(root, 'packages', 'meta-optimizers');
  const dir = path.join(pkg, '.kernel-ab', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'wasm'), { recursive: true });
  fs.cpSync(path.join(pkg, 'dist'), path.join(dir, 'dist'), { recursive: true });
  // The committed builds, then the side's own over them (a variant directory may hold only the kernel it changes).
  fs.cpSync(path.join(pkg, 'wasm'), path.join(dir, 'wasm'), { recursive: true });
  const files = fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'));
  if (!files.length) throw new Error(`${wasmDir}: no .wasm files`);
  for (const f of files) fs.copyFileSync(path.join(wasmDir, f), path.join(dir, 'wasm', f));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(path.join(dir, 'dist', 'index.js')) as Record<string, unknown>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      a: { type: 'string' },
      b: { type: 'string' },
      pairs: { type: 'string', default: '15' },
      n: { type: 'string', default: '15910' },
      unroll: { type: 'string', default: '20' },
      threads: { type: 'string', default: '1' },
      optimizer: { type: 'string', default: 'lstm' },
      wall: { type: 'boolean', default: false },
    },
  });
  if (!values.a || !values.b) throw new Error('usage: node bench/dist/kernel-ab.js --a DIR --b DIR [--pairs 15] [--n 15910] [--unroll 20] [--threads 1] [--optimizer lstm|rnnprop|normalized-history] [--wall]');
  const pairs = positive('pairs', values.pairs!);
  const n = positive('n', values.n!);
  const unroll = positive('unroll', values.unroll!);
  const threads = positive('threads', values.threads!);
  const optimizer = values.optimizer as keyof typeof OPTIMIZERS;
  if (!Object.hasOwn(OPTIMIZERS, optimizer)) throw new Error(`--optimizer expects one of ${Object.keys(OPTIMIZERS).join(', ')}, got ${JSON.stringify(values.optimizer)}`);
  const clock = values.wall
    ? () => performance.now() / 1000
    : () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      };
  const root = path.resolve(__dirname, '..', '..');
  await useBackend('cpu');
  const rng = new Rng(1);
  const grads = Array.from({ length: unroll }, () => Float32Array.from(rng.normals(n, 0, 0.01)));
  const adjoints = Array.from({ length: unroll }, () => Float32Array.from(rng.normals(n, 0, 1)));
  // The normalised-history optimizer's windows hold parameters: start them apart.
  const start = optimizer === 'normalized-history' ? Float32Array.from(rng.normals(n, 0, 0.1)) : new Float32Array(n);
  const sides = [values.a, values.b].map((dir, k) => {
    const mod = loadSide(root, k === 0 ? 'A' : 'B', path.resolve(dir));
    const Meta = mod[OPTIMIZERS[optimizer]] as new (options: object, seed: number) => { optimizer(): { fused?: { open(n: number, o: object): FusedRun } }; dispose(): void };
    const meta = new Meta({}, 0);
    const kernel = meta.optimizer().fused;
    if (!kernel) throw new Error('no fused kernel on this engine (WebAssembly SIMD missing)');
    return { meta, run: kernel.open(n, { threads }) };
  });
  const once = (k: number) => {
    const { run } = sides[k]!;
    const params = start.slice();
    let t0 = clock();
    run.beginUnroll(unroll);
    for (const g of grads) run.step(g, params);
    const forward = clock() - t0;
    t0 = clock();
    const out = run.backward(adjoints);
    const backward = clock() - t0;
    return { forward, backward, bits: { params, out } };
  };
  const times = [0, 1].map(() => ({ forward: [] as number[], backward: [] as number[] }));
  let same = true;
  try {
    once(0);
    once(1);
    for (let i = 0; i < pairs; i++) {
      const results: Array<ReturnType<typeof once>> = [];
      for (const k of i % 2 ? [1, 0] : [0, 1]) {
        const r = once(k);
        times[k]!.forward.push(r.forward);
        times[k]!.backward.push(r.backward);
        results[k] = r;
      }
      const [x, y] = [results[0]!.bits, results[1]!.bits];
      const eq = (p: ArrayLike<number>, q: ArrayLike<number>) => p.length === q.length && Array.from(p).every((v, j) => Object.is(v, q[j]));
      if (!eq(x.params, y.params) || Object.keys(x.out).some((name) => !eq(x.out[name]!, y.out[name]!))) same = false;
    }
  } finally {
    for (const s of sides) {
      s.run.dispose();
      s.meta.dispose();
    }
    fs.rmSync(path.join(root, 'packages', 'meta-optimizers', '.kernel-ab'), { recursive: true, force: true });
  }
  const ratio = (part: 'forward' | 'backward' | 'total') => {
    const get = (k: number, i: number) => (part === 'total' ? times[k]!.forward[i]! + times[k]!.backward[i]! : times[k]![part][i]!);
    return Number(median(Array.from({ length: pairs }, (_, i) => get(1, i) / get(0, i))).toFixed(3));
  };
  const med = (k: number, part: 'forward' | 'backward') => Number(median(times[k]![part]).toFixed(4));
  console.log(
    JSON.stringify({
      what: `fused ${optimizer} kernel: ${values.wall ? 'wall' : 'CPU'} seconds of a forward unroll of ${unroll} steps and its backward pass at ${n} coordinates, ${threads} thread(s), builds A and B alternating in one process; ratios are medians of the per-pair B/A`,
      a: values.a,
      b: values.b,
      pairs,
      forward: { a: med(0, 'forward'), b: med(1, 'forward'), b_over_a: ratio('forward') },
      backward: { a: med(0, 'backward'), b: med(1, 'backward'), b_over_a: ratio('backward') },
      total_b_over_a: ratio('total'),
      bit_identical: same,
    }),
  );
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
