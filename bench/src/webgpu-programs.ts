/**
 * GPU programs (launches) per meta-iteration on the webgpu backend: for a coordinatewise optimizer's small
 * tensors a GPU's time goes to launches, so their count is the figure to watch when no GPU is at hand (Mesa's
 * software device counts the same programs as a GPU; its seconds say little about a GPU's). One JSON line: the
 * programs of one meta-iteration of Q-like meta-training (the LSTM with its defaults, an unroll of `unroll` steps
 * on `batch` ten-dimensional quadratics), by tfjs-webgpu program kind, with wall and CPU seconds, after one
 * untimed meta-iteration that compiles the programs.
 *
 *     pnpm build && node bench/dist/webgpu-programs.js [batch=8] [unroll=20]
 */
import * as tf from '@tensorflow/tfjs-core';
import { MetaTrainer, resolveTrainingOptions, useBackend } from '@l2l/core';
import { LstmMetaOptimizer } from '@l2l/meta-optimizers';
import { createQuadraticFamily } from '@l2l/optimizees';

interface ProgramRunner {
  runWebGPUProgram(program: { shaderKey: string }, ...rest: unknown[]): unknown;
}

async function main(): Promise<void> {
  const [batchArg = '8', unrollArg = '20'] = process.argv.slice(2);
  const batch = Number(batchArg);
  const unroll = Number(unrollArg);
  const info = await useBackend('webgpu');
  const backend = tf.backend() as unknown as ProgramRunner;
  const counts = new Map<string, number>();
  const run = backend.runWebGPUProgram;
  backend.runWebGPUProgram = function (program, ...rest) {
    // The kind: the shader key up to its shape-specific suffix.
    const kind = program.shaderKey.split('_').slice(0, 2).join('_');
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    return run.call(this, program, ...rest);
  };
  const family = createQuadraticFamily({ dims: 10, batch });
  const meta = new LstmMetaOptimizer({}, 0);
  // Two unrolls per epoch, no validation: the first compiles, the second is counted.
  const training = resolveTrainingOptions({ epochs: 2, episodesPerEpoch: 1, steps: 2 * unroll, unroll, validateEvery: 1000 });
  let t0 = 0;
  let c0 = process.cpuUsage();
  let seconds = 0;
  let cpuSeconds = 0;
  const trainer = new MetaTrainer(family, meta, training, 0, {
    onUnroll: ({ unroll: u }) => {
      if (u === 0) {
        counts.clear();
        t0 = performance.now();
        c0 = process.cpuUsage();
      } else {
        seconds = (performance.now() - t0) / 1e3;
        const c = process.cpuUsage(c0);
        cpuSeconds = (c.user + c.system) / 1e6;
      }
    },
  });
  try {
    await trainer.trainEpoch();
  } finally {
    trainer.dispose();
    meta.dispose();
  }
  const programs = [...counts.values()].reduce((a, b) => a + b, 0);
  console.log(
    JSON.stringify({
      what: `GPU programs and seconds of one meta-iteration (unroll ${unroll}, meta-gradient, Adam step) of the LSTM on ${batch} ten-dimensional quadratics, webgpu`,
      device: info.device,
      coordinates: 10 * batch,
      unroll,
      programs,
      programs_per_step: Math.round(programs / unroll),
      seconds,
      cpu_seconds: cpuSeconds,
      by_kind: Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1])),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
