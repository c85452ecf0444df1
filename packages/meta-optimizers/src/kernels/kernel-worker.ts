/*
 * A worker thread of a fused kernel (kernel-threads.ts): the module instantiated on the run's shared memory,
 * running its share of the tiles on every call the main thread signals through the control block.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { claimChunks, CTRL, instantiate, OPS } from './kernel-threads';
import { chunkOf } from './tile-threads';
import type { NormalizedHistoryExports } from '../normalized-history/kernel';

interface Init {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: SharedArrayBuffer;
  index: number;
  /** The build (`lstm-stack`, `normalized-history`): whose exports, with which arguments, the calls run. */
  source: string;
}

// (Not named `module`: that is the CommonJS wrapper's own.)
const { module: wasmModule, memory, ctrl, index, source } = workerData as Init;
const i32 = new Int32Array(ctrl);
const f32 = new Float32Array(ctrl);
let ex: ReturnType<typeof instantiate>;
try {
  ex = instantiate(wasmModule, memory);
} catch (e) {
  Atomics.store(i32, CTRL.ERROR, 1);
  parentPort?.postMessage({ error: `worker ${index}: ${(e as Error).message}` });
  throw e;
} finally {
  Atomics.add(i32, CTRL.READY, 1);
  Atomics.notify(i32, CTRL.READY);
}
const me = CTRL.WORKER + CTRL.WORKER_STRIDE * index;
let seen = 0;

for (;;) {
  Atomics.wait(i32, CTRL.CMD, seen);
  seen = Atomics.load(i32, CTRL.CMD);
  const op = i32[CTRL.OP];
  if (op === OPS.EXIT) break;
  try {
    const a = (k: number) => i32[CTRL.ARGS + k]!;
    const fa = (k: number) => f32[CTRL.FARGS + k]!;
    const [cur, scr] = [i32[me]!, i32[me + 1]!];
    // Forward and backward passes: the chunks of tiles this thread claims (tile-threads.ts).
    const chunks = (run: (t0: number, t1: number, acc: number) => void) =>
      claimChunks(i32, (c) => {
        const { t0, t1, acc } = chunkOf(i32, c);
        run(t0, t1, acc);
      });
    if (source === 'normalized-history') {
      // The argument order of normalized-history/kernel.ts's calls.
      const nh = ex as unknown as NormalizedHistoryExports;
      if (op === OPS.CONFIGURE) nh.configure(a(0), a(1), a(2), fa(0), a(3), a(4));
      else if (op === OPS.FORWARD) chunks((t0, t1) => nh.forwardStep(t0, t1, a(0), a(1), a(2), a(3), a(4), a(5), a(6), cur));
      else if (op === OPS.BACKWARD) chunks((t0, t1, acc) => nh.backward(t0, t1, a(0), a(1), a(2), a(3), a(4), a(5), a(6), scr, acc));
    } else if (op === OPS.CONFIGURE) ex.configure(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7), fa(0), fa(1), fa(2), fa(3));
    else if (op === OPS.FORWARD) chunks((t0, t1) => ex.forwardStep(t0, t1, a(0), a(1), a(2), a(3), cur, a(4), a(5), fa(0), fa(1), a(6), a(7), a(8), fa(2)));
    else if (op === OPS.BACKWARD) chunks((t0, t1, acc) => ex.backward(t0, t1, a(0), a(1), a(2), a(3), a(4), a(5), scr, acc, a(6), a(7), fa(0)));
  } catch (e) {
    Atomics.store(i32, CTRL.ERROR, 1);
    parentPort?.postMessage({ error: `worker ${index}: ${(e as Error).message}` });
  }
  Atomics.add(i32, CTRL.DONE, 1);
  Atomics.notify(i32, CTRL.DONE);
}
