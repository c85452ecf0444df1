// The queue thread (queue-thread.ts): BullMQ's worker, on an event loop of its own, takes jobs, keeps their locks
// and ends them; the worker's thread computes them. It dies with its process, so a killed worker's jobs are taken
// over by another once their locks lapse.
import { parentPort, workerData } from 'node:worker_threads';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { QueueThreadData, ToQueueThread, FromQueueThread } from './queue-thread';

const { url, queue, prefix, concurrency, lockMs } = workerData as QueueThreadData;
const port = parentPort!;
const post = (m: FromQueueThread): void => port.postMessage(m);
const pending = new Map<string, { resolve(value: unknown): void; reject(e: Error): void }>();

const connection = new Redis(url, { maxRetriesPerRequest: null, connectionName: 'l2l-worker-queue', retryStrategy: (times) => Math.min(100 * times, 2000) });
// Outages are retried (BullMQ's needs: no per-request retry limit).
connection.on('error', () => {});

const worker = new Worker(
  queue,
  (job) =>
    new Promise((resolve, reject) => {
      pending.set(job.id!, { resolve, reject });
      post({ kind: 'job', id: job.id!, name: job.name, data: job.data });
    }),
  {
    connection,
    prefix,
    concurrency,
    lockDuration: lockMs,
    stalledInterval: lockMs / 2,
    // A shard whose worker died is taken over (replayed) rather than failed, up to a few times.
    maxStalledCount: 5,
  },
);
worker.on('error', () => {});
// A lock that could not be renewed (Redis away for longer than the lock, a machine suspended): the job may be
// another worker's now.
worker.on('lockRenewalFailed', (ids: string[]) => {
  for (const id of ids) post({ kind: 'lost', id });
});

port.on('message', (m: ToQueueThread) => {
  if (m.kind === 'result') {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error === undefined) p?.resolve(m.value);
    else p?.reject(new Error(m.error));
  } else {
    // Jobs in progress end first (their results still come from the worker's thread).
    void worker
      .close()
      .catch(() => {})
      .then(() => {
        connection.disconnect();
        // The port's listener is what keeps this thread alive.
        port.close();
      });
  }
});

worker.waitUntilReady().then(
  () => post({ kind: 'ready' }),
  (e: unknown) => post({ kind: 'failed', message: (e as Error)?.message ?? String(e) }),
);
