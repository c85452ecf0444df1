import { CTRL, type KernelInstance } from './kernel-threads';

/** Most chunks a threaded pass splits the tiles into. */
export const MAX_CHUNKS = 32;
/** Memory the backward pass's per-chunk accumulators may take; fewer chunks (at least 2) where they would take more. */
const CHUNK_ACC_BYTES = 64 * 2 ** 20;

/**
 * The fixed chunks that threaded passes share out: `count` chunks of `size` tiles (the last may be shorter), from the
 * tile count and the accumulator size only, never the thread count.
 */
export function tileChunks(nt: number, accBytes: number): { size: number; count: number } {
  const want = Math.max(2, Math.min(MAX_CHUNKS, Math.floor(CHUNK_ACC_BYTES / accBytes)));
  const size = Math.ceil(nt / Math.min(nt, want));
  return { size, count: Math.ceil(nt / size) };
}

/**
 * How a fused run spreads its tiles over threads. One thread runs each pass in one call over every tile, with one
 * weight-gradient accumulator. Several threads share fixed chunks of tiles (`tileChunks`), claimed in turn from the
 * control block: a thread that wakes late or runs slower takes fewer chunks, where fixed halves left the other
 * waiting (on this 2-core machine the main thread waited ~10 % of a meta-iteration for its worker). In the
 * backward pass each chunk has its own accumulator, summed in chunk order, so the meta-gradient is the same
 * whichever thread ran a chunk and however many threads (two or more) there are; one thread sums in another order
 * (float32 rounding apart).
 */
export class TileThreads {
  readonly threads: number;
  readonly chunks: { size: number; count: number };
  /** Per thread: forward-pass scratch. */
  private readonly cur: number[];
  /** Per thread: backward-pass scratch (sized by `sizeBackward`). */
  private scr: number[] = [];
  /** The accumulators: one (one thread) or one per chunk, `accBytes` apart. */
  private acc = 0;

  constructor(
    private readonly inst: KernelInstance,
    readonly nt: number,
    threads: number,
    /** Bytes of one weight-gradient accumulator. */
    readonly accBytes: number,
    curBytes: number,
  ) {
    this.threads = Math.max(1, Math.min(Math.floor(threads), nt));
    this.chunks = tileChunks(nt, accBytes);
    this.cur = Array.from({ length: this.threads }, () => inst.mem.alloc(curBytes));
    if (this.threads > 1) this.writeSlots();
  }

  /** Accumulators in the order the backward pass's results are summed. */
  get accumulators(): number[] {
    const n = this.threads > 1 ? this.chunks.count : 1;
    return Array.from({ length: n }, (_, c) => this.acc + c * this.accBytes);
  }

  /** Allocates each thread's backward scratch (`scrBytes`) and the accumulators. */
  sizeBackward(scrBytes: number): void {
    const mem = this.inst.mem;
    this.scr = this.cur.map(() => mem.alloc(scrBytes));
    this.acc = mem.alloc((this.threads > 1 ? this.chunks.count : 1) * this.accBytes);
    if (this.threads > 1) this.writeSlots();
  }

  /**
   * A forward pass over all tiles: `here(t0, t1, cur)` on this thread, in one call with one thread; with more, for
   * the chunks this thread claims while the workers run `op` on theirs (arguments already written by `setArgs`).
   */
  forward(op: number, here: (t0: number, t1: number, cur: number) => void): void {
    if (this.threads === 1) return here(0, this.nt, this.cur[0]!);
    const workers = this.workers();
    this.writeGeometry(workers.i32);
    workers.callChunks(op, this.chunks.count, (c) => {
      const { t0, t1 } = chunkOf(workers.i32, c);
      here(t0, t1, this.cur[0]!);
    });
  }

  /** A backward pass, as `forward`, each chunk accumulating into its own accumulator (zeroed first). */
  backward(op: number, here: (t0: number, t1: number, scr: number, acc: number) => void): void {
    this.inst.mem.f32(this.acc, (this.accumulators.length * this.accBytes) / 4).fill(0);
    if (this.threads === 1) return here(0, this.nt, this.scr[0]!, this.acc);
    const workers = this.workers();
    this.writeGeometry(workers.i32);
    workers.callChunks(op, this.chunks.count, (c) => {
      const { t0, t1, acc } = chunkOf(workers.i32, c);
      here(t0, t1, this.scr[0]!, acc);
    });
  }

  /** Writes a call's integer and float arguments for the workers (nothing to do with one thread). */
  setArgs(ints: readonly number[], floats: readonly number[] = []): void {
    if (this.threads === 1) return;
    const { i32, f32 } = this.workers();
    ints.forEach((v, k) => (i32[CTRL.ARGS + k] = v));
    floats.forEach((v, k) => (f32[CTRL.FARGS + k] = v));
  }

  /** The worker threads (started on first use); `setArgs` fills the arguments before a call. */
  workers(): ReturnType<KernelInstance['workers']> {
    return this.inst.workers(this.threads - 1);
  }

  private writeGeometry(i32: Int32Array): void {
    i32[CTRL.TILES] = this.nt;
    i32[CTRL.CHUNK_TILES] = this.chunks.size;
    i32[CTRL.ACC] = this.acc;
    i32[CTRL.ACC_STRIDE] = this.accBytes;
  }

  /** Each worker's scratch pointers (thread 0 is this one). */
  private writeSlots(): void {
    const { i32 } = this.workers();
    for (let w = 1; w < this.threads; w++) {
      const base = CTRL.WORKER + CTRL.WORKER_STRIDE * (w - 1);
      i32[base] = this.cur[w]!;
      i32[base + 1] = this.scr[w] ?? 0;
    }
  }
}

/** Chunk c's tiles [t0, t1) and accumulator, from the control block (what every thread of a pass reads). */
export function chunkOf(i32: Int32Array, c: number): { t0: number; t1: number; acc: number } {
  const size = i32[CTRL.CHUNK_TILES]!;
  const t0 = c * size;
  return { t0, t1: Math.min(i32[CTRL.TILES]!, t0 + size), acc: i32[CTRL.ACC]! + c * i32[CTRL.ACC_STRIDE]! };
}
