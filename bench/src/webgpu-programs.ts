/**
 * GPU programs (launches) per meta-iteration on the webgpu backend: for a coordinatewise optimizer's small
 * tensors a GPU's time goes to launches, so their count is the figure to watch when no GPU is at hand (Mesa's
 * software device counts the same programs as a GPU; its seconds say little about a GPU's). One JSON line: the
 * programs of one meta-iteration of Q-like meta-training (the LSTM with its defaults, an unroll of `unroll` steps
 * on `batch` ten-dimensional quadratics), by tfjs-webgpu program kind, with wall and CPU seconds, after one
 * untimed meta-iteration that compiles the programs.
 *
 *     pnpm build && node bench/dist/webgpu-programs.js [batch=8] [unroll=20] [--gpu-time] [--eval] [--rnnprop]
 *
 * --eval counts an evaluation run of `unroll` steps instead (runOptimizerAsync: no tape, the optimizee's loss and
 * gradient and the optimizer's update each step), with an `rnnprop` run beside the LSTM's. --rnnprop meta-trains
 * `rnnprop` (its defaults) instead of the LSTM.
 *
 * --gpu-time adds each kind's GPU milliseconds (timestamp queries, where the device has them; not on Mesa's
 * software device), which say whether launches or arithmetic set the pace at a size.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MetaTrainer, resolveTrainingOptions, runOptimizerAsync, useBackend, type MetaOptimizer } from '@l2l/core';
import { LstmMetaOptimizer, RnnpropMetaOptimizer } from '@l2l/meta-optimizers';
import { createQuadraticFamily } from '@l2l/optimizees';

interface ProgramRunner {
  runWebGPUProgram(program: { shaderKey: string }, ...rest: unknown[]): unknown;
  /** tfjs-webgpu times every program it runs while this is an array (what tf.time sets up), if the device has timestamp queries. */
  activeTimers?: Array<{ name: string; query: Promise<number> }> | null;
  readonly supportTimestampQuery?: boolean;
}

/** The GPU milliseconds of the programs timed since `activeTimers` was set, in all and by kind; stops timing. */
async function gpuMilliseconds(backend: ProgramRunner): Promise<{ gpu_ms: number; gpu_ms_by_kind: Record<string, number> } | { gpu_ms: null; why: string }> {
  const timers = backend.activeTimers ?? [];
  backend.activeTimers = null;
  if (!backend.supportTimestampQuery) return { gpu_ms: null, why: 'the device has no timestamp-query feature' };
  const ms = await Promise.all(timers.map((t) => t.query));
  const byKind = new Map<string, number>();
  timers.forEach((t, i) => byKind.set(t.name, (byKind.get(t.name) ?? 0) + ms[i]!));
  const round = (x: number) => Number(x.toPrecision(3));
  return { gpu_ms: round(ms.reduce((a, b) => a + b, 0)), gpu_ms_by_kind: Object.fromEntries([...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v)])) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  // --gpu-time: each program's GPU time by timestamp queries; each then runs in a pass of its own and is read
  // back, so the wall and CPU seconds of that run are not a meta-iteration's.
  const gpuTime = args.includes('--gpu-time');
  const evaluation = args.includes('--eval');
  const rnnprop = args.includes('--rnnprop');
  const [batchArg = '8', unrollArg = '20'] = args.filter((a) => !a.startsWith('--'));
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
    const timed = this.activeTimers?.length;
    const out = run.call(this, program, ...rest);
    // tfjs names a timer by the program's class; ours are plain objects: name it by kind.
    if (timed !== undefined && this.activeTimers!.length > timed) this.activeTimers![timed]!.name = kind;
    return out;
  };
  const family = createQuadraticFamily({ dims: 10, batch });
  if (evaluation) {
    for (const meta of [new LstmMetaOptimizer({}, 0), new RnnpropMetaOptimizer({}, 0)] as MetaOptimizer[]) {
      const task = family.build(family.sample(0, 'test'));
      try {
        const evaluate = () => runOptimizerAsync(task, meta.optimizer(), { steps: unroll, initSeed: 0, batchSeed: 0, kernel: 'tfjs' });
        await evaluate(); // compiles the programs
        counts.clear();
        if (gpuTime) backend.activeTimers = [];
        const t = performance.now();
        const c = process.cpuUsage();
        await evaluate();
        const cpu = process.cpuUsage(c);
        const seconds = (performance.now() - t) / 1e3;
        const programs = [...counts.values()].reduce((a, b) => a + b, 0);
        const gpu = gpuTime ? await gpuMilliseconds(backend) : undefined;
        console.log(
          JSON.stringify({
            what: `GPU programs and seconds of an evaluation run of ${unroll} steps (loss, gradient, update; no tape) of ${meta.type} on ${batch} ten-dimensional quadratics, webgpu`,
            device: info.device,
            optimizer: meta.type,
            coordinates: 10 * batch,
            steps: unroll,
            programs,
            programs_per_step: Math.round(programs / unroll),
            seconds,
            cpu_seconds: (cpu.user + cpu.system) / 1e6,
            by_kind: Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1])),
            ...gpu,
          }),
        );
      } finally {
        task.dispose?.();
        meta.dispose();
      }
    }
    return;
  }
  const meta: MetaOptimizer = rnnprop ? new RnnpropMetaOptimizer({}, 0) : new LstmMetaOptimizer({}, 0);
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
        if (gpuTime) backend.activeTimers = [];
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
  const gpu = gpuTime ? await gpuMilliseconds(backend) : undefined;
  console.log(
    JSON.stringify({
      what: `GPU programs and seconds of one meta-iteration (unroll ${unroll}, meta-gradient, Adam step) of ${meta.type} on ${batch} ten-dimensional quadratics, webgpu`,
      device: info.device,
      coordinates: 10 * batch,
      unroll,
      programs,
      programs_per_step: Math.round(programs / unroll),
      seconds,
      cpu_seconds: cpuSeconds,
      by_kind: Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1])),
      ...gpu,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
