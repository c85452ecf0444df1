import type * as tf from '@tensorflow/tfjs-core';
import { readsSynchronously } from '../backend';

/*
 * Long synchronous computations (tuning grids, evaluations over many tasks) written once as generators that
 * yield between runs, and driven either to the end at once (`runSteps`) or with a turn of the event loop at each
 * yield (`runStepsAsync`): there, signal handlers (Ctrl-C, SIGTERM, the lock files' cleanup), timers and I/O run
 * between runs instead of after minutes of work.
 */

/**
 * A computation that yields between its units of work and returns a T. It may also yield a promise (work done
 * elsewhere: runs on distributed workers), which `runStepsAsync` awaits and hands back as the yield's value.
 */
export type Steps<T> = Generator<void | Promise<unknown>, T, unknown>;

/** Runs `steps` to the end, synchronously (a step that waits on a promise needs `runStepsAsync`). */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (r.value) {
      throw new Error(
        `runSteps: this computation waits for work elsewhere (a run source)${readsSynchronously() ? '' : ' or for the backend\'s asynchronous reads (webgpu)'}: drive it with runStepsAsync`,
      );
    }
  }
}

/** Inside a Steps generator: waits for `promise` (driven by runStepsAsync) and gives its value. */
export function* awaitStep<T>(promise: Promise<T>): Generator<Promise<unknown>, T, unknown> {
  return (yield promise) as T;
}

// setImmediate runs after the poll phase, where Node delivers signals; browsers have setTimeout.
const turn = typeof setImmediate === 'function' ? () => new Promise<void>((resolve) => setImmediate(resolve)) : () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Runs `steps` to the end, giving the event loop a turn at every yield. */
export async function runStepsAsync<T>(steps: Steps<T>): Promise<T> {
  let r = steps.next();
  for (;;) {
    if (r.done) return r.value;
    if (r.value) {
      let value: unknown;
      try {
        value = await r.value;
      } catch (e) {
        // Thrown into the generator: its finally blocks (tasks, families) run as the error passes through.
        r = steps.throw(e);
        continue;
      }
      r = steps.next(value);
    } else {
      await turn();
      r = steps.next();
    }
  }
}

/**
 * Inside a Steps generator: makes `tensors` readable with `dataSync`. A no-op where the backend reads
 * synchronously; on webgpu it waits for their data once (tfjs keeps a copy on the host), so the code that
 * follows reads as everywhere else. Driven by `runSteps`, that wait is an error that says to use runStepsAsync.
 */
export function* readStep(...tensors: tf.Tensor[]): Generator<Promise<unknown>, void, unknown> {
  if (!readsSynchronously()) yield Promise.all(tensors.map((t) => t.data()));
}

/** Inside a Steps generator: `value`, or what it resolves to when it is a promise (a task's asynchronous metrics). */
export function* settle<T>(value: T | Promise<T>): Generator<Promise<unknown>, T, unknown> {
  return value instanceof Promise ? yield* awaitStep(value) : value;
}

/** Inside a Steps generator: the value of scalar `t`, which it then disposes (read as `readStep` allows). */
export function* scalarStep(t: tf.Tensor): Generator<Promise<unknown>, number, unknown> {
  try {
    yield* readStep(t);
    return t.dataSync()[0]!;
  } finally {
    t.dispose();
  }
}

/** `readStep` for async code: resolves once `tensors` are readable with `dataSync` on the backend in use. */
export async function readable(...tensors: tf.Tensor[]): Promise<void> {
  if (!readsSynchronously()) await Promise.all(tensors.map((t) => t.data()));
}

/**
 * Runs `steps` synchronously where the backend reads synchronously, and with `runStepsAsync` where it does not
 * (webgpu): what a Task's `metrics` and `fullLoss` return, so that sync callers on cpu and wasm keep a number.
 */
export function runWhereReadable<T>(steps: Steps<T>): T | Promise<T> {
  return readsSynchronously() ? runSteps(steps) : runStepsAsync(steps);
}
