/*
 * Long synchronous computations (tuning grids, evaluations over many tasks) written once as generators that
 * yield between runs, and driven either to the end at once (`runSteps`) or with a turn of the event loop at each
 * yield (`runStepsAsync`): there, signal handlers (Ctrl-C, SIGTERM, the lock files' cleanup), timers and I/O run
 * between runs instead of after minutes of work.
 */

/** A computation that yields between its units of work and returns a T. */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to the end, synchronously. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

// setImmediate runs after the poll phase, where Node delivers signals; browsers have setTimeout.
const turn = typeof setImmediate === 'function' ? () => new Promise<void>((resolve) => setImmediate(resolve)) : () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Runs `steps` to the end, giving the event loop a turn at every yield. */
export async function runStepsAsync<T>(steps: Steps<T>): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await turn();
  }
}
