import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { UserError } from '@l2l/core';

/** The thread's script, beside this file once built (dist/), or in dist/ when this runs from src/ (tests). */
export const QUEUE_THREAD_SCRIPT = path.resolve(__dirname, '../dist/queue-thread-main.js');

/** What the queue thread starts with. */
export interface QueueThreadData {
  url: string;
  queue: string;
  prefix: string;
  concurrency: number;
  lockMs: number;
}

/** A job as the worker's thread sees it: what it computes from. */
export interface TakenJob<T = unknown> {
  id: string;
  name: string;
  data: T;
}

export type ToQueueThread = { kind: 'result'; id: string; value?: unknown; error?: string } | { kind: 'close' };
export type FromQueueThread =
  | ({ kind: 'job' } & TakenJob)
  | { kind: 'lost'; id: string }
  | { kind: 'ready' }
  | { kind: 'failed'; message: string };

/**
 * A worker process's BullMQ side, in a thread of its own: it takes jobs (at most `concurrency` at once), renews
 * their locks and ends them with what `handle` returns or throws on this thread. A truncation or an evaluation run
 * keeps this thread busy without a break; BullMQ's lock renewal is a timer, and on this thread it could not run
 * meanwhile: a job whose computation outlasted the lock (or that was taken while another computed) lapsed, and
 * another worker computed it again. The queue thread dies with the process: a killed worker's jobs are still taken
 * over once their locks lapse.
 */
export class QueueThread {
  private readonly thread: Worker;
  private readonly held = new Set<string>();
  private readonly lostIds = new Set<string>();
  private readonly started: Promise<void>;
  private failure?: string;
  private closed?: Promise<void>;

  /** `onFailure`: told once if the thread fails (then no job is taken any more). */
  constructor(data: QueueThreadData, handle: (job: TakenJob) => Promise<unknown>, onFailure?: (message: string) => void) {
    if (!fs.existsSync(QUEUE_THREAD_SCRIPT)) throw new Error(`${QUEUE_THREAD_SCRIPT} is missing: build @l2l/distributed first (pnpm build)`);
    this.thread = new Worker(QUEUE_THREAD_SCRIPT, { workerData: data });
    let ready: () => void;
    let refused: (e: Error) => void;
    this.started = new Promise<void>((resolve, reject) => {
      ready = resolve;
      refused = reject;
    });
    // Awaited through ready(); a failure before anyone awaits is not an unhandled rejection.
    this.started.catch(() => {});
    const fail = (why: string): void => {
      if (this.failure !== undefined) return;
      this.failure = why;
      refused(new UserError(`the worker's queue thread failed: ${why}`));
      onFailure?.(why);
    };
    this.thread.on('message', (m: FromQueueThread) => {
      if (m.kind === 'job') {
        this.held.add(m.id);
        this.lostIds.delete(m.id);
        handle(m).then(
          (value) => this.finish({ kind: 'result', id: m.id, value }),
          (e: unknown) => this.finish({ kind: 'result', id: m.id, error: (e as Error)?.message ?? String(e) }),
        );
      } else if (m.kind === 'lost') {
        if (this.held.has(m.id)) this.lostIds.add(m.id);
      } else if (m.kind === 'ready') ready();
      else fail(m.message);
    });
    this.thread.on('error', (e) => fail(e.message));
    this.thread.on('exit', (code) => {
      if (!this.closed) fail(`it exited (code ${code})`);
    });
  }

  /** Resolves once the thread takes jobs. */
  ready(): Promise<void> {
    return this.started;
  }

  /**
   * Whether job `id`'s lock lapsed (another worker may compute it now), as far as this thread has heard; throws
   * when the queue thread failed.
   */
  lost(id: string): boolean {
    if (this.failure !== undefined) throw new UserError(`the worker's queue thread failed (${this.failure}): restart the worker`);
    return this.lostIds.has(id);
  }

  /** Takes no more jobs, waits for the ones in progress to end, and stops the thread. */
  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      if (this.thread.threadId === -1) return resolve(); // exited already
      this.thread.once('exit', () => resolve());
      this.thread.postMessage({ kind: 'close' } satisfies ToQueueThread);
    });
    return this.closed;
  }

  private finish(m: ToQueueThread & { kind: 'result' }): void {
    this.held.delete(m.id);
    this.lostIds.delete(m.id);
    this.thread.postMessage(m);
  }
}
