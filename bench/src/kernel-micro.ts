/**
 * Micro-benchmark of the fused LSTM-stack kernel alone (no optimizee, no tfjs work in the timed region): one
 * unroll of `unroll` forward steps on synthetic gradients, then its backward pass, at `n` coordinates, with the
 * LSTM optimizer's defaults (2 × 20, logAndSign), RNNprop's (`--rnnprop`) or the normalised-history optimizer's
 * (`--normalized-history`: k 10, 50 hidden units, from random parameters). Prints one JSON line per setting:
 * median wall and CPU seconds of the forward unroll and of the backward pass, over `iterations` after one warm-up.
 *
 *     pnpm build && node bench/dist/kernel-micro.js [n=15910] [unroll=20] [iterations=7] [threads=1] [--rnnprop | --normalized-history]
 */
import { Rng, useBackend } from '@l2l/core';
import { LstmMetaOptimizer, NormalizedHistoryMetaOptimizer, RnnpropMetaOptimizer } from '@l2l/meta-optimizers';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function main(): Promise<void> {
  const rnnprop = process.argv.includes('--rnnprop');
  const normalizedHistory = process.argv.includes('--normalized-history');
  const [nArg = '15910', unrollArg = '20', itersArg = '7', threadsArg = '1'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const n = Number(nArg);
  const unroll = Number(unrollArg);
  const iterations = Number(itersArg);
  const threads = Number(threadsArg);
  await useBackend('cpu');
  const mo = rnnprop ? new RnnpropMetaOptimizer({}, 0) : normalizedHistory ? new NormalizedHistoryMetaOptimizer({}, 0) : new LstmMetaOptimizer({}, 0);
  const kernel = mo.optimizer().fused;
  if (!kernel) throw new Error('no fused kernel on this engine (WebAssembly SIMD missing)');
  const rng = new Rng(1);
  const grads = Array.from({ length: unroll }, () => Float32Array.from(rng.normals(n, 0, 0.01)));
  const adjoints = Array.from({ length: unroll }, () => Float32Array.from(rng.normals(n, 0, 1)));
  // The normalised-history optimizer's windows hold parameters: start them apart.
  const params = normalizedHistory ? Float32Array.from(rng.normals(n, 0, 0.1)) : new Float32Array(n);
  const run = kernel.open(n, { threads });
  const fwd: number[] = [];
  const fwdCpu: number[] = [];
  const bwd: number[] = [];
  const bwdCpu: number[] = [];
  try {
    for (let i = 0; i <= iterations; i++) {
      let t = performance.now();
      let c = cpuSeconds();
      run.beginUnroll(unroll);
      for (const g of grads) run.step(g, params);
      const f = (performance.now() - t) / 1e3;
      const fc = cpuSeconds() - c;
      t = performance.now();
      c = cpuSeconds();
      run.backward(adjoints);
      if (i > 0) {
        fwd.push(f);
        fwdCpu.push(fc);
        bwd.push((performance.now() - t) / 1e3);
        bwdCpu.push(cpuSeconds() - c);
      }
    }
  } finally {
    run.dispose();
  }
  console.log(
    JSON.stringify({
      what: `fused ${rnnprop ? 'rnnprop' : normalizedHistory ? 'normalized-history' : 'lstm'} kernel alone: forward unroll and backward pass, synthetic gradients`,
      kernel: kernel.description,
      coordinates: n,
      unroll,
      threads,
      iterations,
      forward_s: median(fwd),
      forward_cpu_s: median(fwdCpu),
      backward_s: median(bwd),
      backward_cpu_s: median(bwdCpu),
      total_cpu_s: median(fwdCpu) + median(bwdCpu),
      // Minima: on a loaded machine the least disturbed repetition is the closest to the kernel's own cost.
      forward_cpu_min_s: Math.min(...fwdCpu),
      backward_cpu_min_s: Math.min(...bwdCpu),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
