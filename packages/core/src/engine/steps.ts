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
    if (r.value) throw new Error('runSteps: this computation waits for work elsewhere (a run source): drive it with runStepsAsync');
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
