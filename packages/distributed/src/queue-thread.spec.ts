import { Queue, QueueEvents, Worker } from 'bullmq';
import { startLocalRedis, type LocalRedis } from './local-redis';
import { QueueThread, type TakenJob } from './queue-thread';

/**
 * The queue thread keeps the locks of the jobs it took while the worker's thread computes without a break; the
 * same computation in BullMQ's own worker, on the computing thread, lets them lapse (the comparison the fix is
 * measured against).
 */
const LOCK_MS = 300;

/** Blocks this thread for `ms`, as a long truncation does: no timer, no event runs meanwhile. */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('QueueThread', () => {
  let redis: LocalRedis;
  let queue: Queue;
  let n = 0;
  const queueName = () => `queue-thread-${++n}`;

  beforeAll(async () => {
    redis = await startLocalRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** The queue's stall events (any worker's stall check moving a job whose lock lapsed back to the queue). */
  async function watchStalls(name: string): Promise<{ events: QueueEvents; stalled: string[] }> {
    const stalled: string[] = [];
    const events = new QueueEvents(name, { connection: { url: redis.url }, prefix: 'l2l' });
    events.on('stalled', ({ jobId }) => stalled.push(jobId));
    await events.waitUntilReady();
    return { events, stalled };
  }

  it('keeps the lock of a job while the computing thread is blocked for 4 × the lock, and ends it with its result', async () => {
    const name = queueName();
    queue = new Queue(name, { connection: { url: redis.url }, prefix: 'l2l' });
    const watcher = await watchStalls(name);
    const seen: TakenJob[] = [];
    const jobs = new QueueThread({ url: redis.url, queue: name, prefix: 'l2l', concurrency: 2, lockMs: LOCK_MS }, async (job) => {
      seen.push(job);
      // Both jobs are taken before the first computes; the second waits on this thread meanwhile.
      await new Promise((r) => setTimeout(r, 50));
      blockFor(4 * LOCK_MS);
      await new Promise((r) => setTimeout(r, 2 * LOCK_MS)); // a stall check runs here, on this thread's loop too
      expect(jobs.lost(job.id)).toBe(false);
      return { doubled: (job.data as { x: number }).x * 2 };
    });
    await jobs.ready();
    const a = await queue.add('a', { x: 3 });
    const b = await queue.add('b', { x: 5 });
    expect(await a.waitUntilFinished(watcher.events, 30_000)).toEqual({ doubled: 6 });
    expect(await b.waitUntilFinished(watcher.events, 30_000)).toEqual({ doubled: 10 });
    expect(seen.map((j) => [j.name, j.data])).toEqual([
      ['a', { x: 3 }],
      ['b', { x: 5 }],
    ]);
    expect(watcher.stalled).toEqual([]);
    await jobs.close();
    await watcher.events.close();
    await queue.close();
  });

  it("fails a job with its handler's message, which the learner reads as the failed reason", async () => {
    const name = queueName();
    queue = new Queue(name, { connection: { url: redis.url }, prefix: 'l2l' });
    const jobs = new QueueThread({ url: redis.url, queue: name, prefix: 'l2l', concurrency: 1, lockMs: LOCK_MS }, async () => {
      throw new Error('unknown optimizee type "x"');
    });
    await jobs.ready();
    const job = await queue.add('a', {}, { attempts: 1 });
    while ((await job.getState()) !== 'failed') await new Promise((r) => setTimeout(r, 20));
    expect((await queue.getJob(job.id!))!.failedReason).toBe('unknown optimizee type "x"');
    await jobs.close();
    await queue.close();
  });

  it('a thread that fails says why: ready() rejects in one line, onFailure is told, and lost() throws after', async () => {
    const told: string[] = [];
    // BullMQ refuses the name in the thread, before it takes anything.
    const jobs = new QueueThread({ url: redis.url, queue: 'bad:name', prefix: 'l2l', concurrency: 1, lockMs: LOCK_MS }, async () => null, (m) => told.push(m));
    const error = await jobs.ready().catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^the worker's queue thread failed: .*:/);
    expect((error as Error).message).not.toContain('\n');
    expect(told).toHaveLength(1);
    expect(() => jobs.lost('1')).toThrow(/^the worker's queue thread failed \(.*\): restart the worker$/);
    await jobs.close();
  });

  it('the comparison: BullMQ on the computing thread lets the lock lapse and another worker takes the job over', async () => {
    const name = queueName();
    queue = new Queue(name, { connection: { url: redis.url }, prefix: 'l2l' });
    const watcher = await watchStalls(name);
    let runs = 0;
    const plain = new Worker(
      name,
      async () => {
        runs++;
        blockFor(4 * LOCK_MS);
        await new Promise((r) => setTimeout(r, 2 * LOCK_MS));
      },
      { connection: { url: redis.url }, prefix: 'l2l', lockDuration: LOCK_MS, stalledInterval: LOCK_MS / 2, autorun: false },
    );
    plain.on('error', () => {});
    const job = await queue.add('a', {});
    void plain.run();
    while (watcher.stalled.length === 0) await new Promise((r) => setTimeout(r, 20));
    expect(watcher.stalled[0]).toBe(job.id);
    await plain.close();
    await watcher.events.close();
    await queue.close();
    expect(runs).toBeGreaterThanOrEqual(1);
  });
});
