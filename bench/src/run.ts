/**
 * `pnpm bench`: seconds per meta-iteration and peak memory of l2l's meta-training, one JSON object per line.
 *
 *     pnpm bench [--backend wasm|cpu|webgpu] [--only Q,M,M100,M1000,MR,eval] [--runs N] [--warmup N] [--checkpoint-every N] [--workers N] [--kernel auto|tfjs|fused] [--q-batch N]
 *
 * Each workload runs in a child process of its own (this script with `--child`), so its peak RSS is not
 * raised by the workloads before it. See bench/results.md for the figures and what changed them.
 */
import { execFileSync, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BackendChoice } from '@l2l/core';
import { DEFAULT_SPECS, measure, WORKLOADS, type Measurement, type WorkloadName, type WorkloadSpec } from './workloads';

interface Args {
  backend: BackendChoice;
  only: WorkloadName[];
  runs?: number;
  warmup?: number;
  checkpointEvery?: number | null;
  workers: number;
  kernel?: 'auto' | 'tfjs' | 'fused';
  qBatch?: number;
  child?: WorkloadName;
}

const USAGE = `usage: pnpm bench [--backend wasm|cpu|webgpu] [--only ${WORKLOADS.join(',')}] [--runs N] [--warmup N] [--checkpoint-every N|0] [--workers N] [--kernel auto|tfjs|fused] [--q-batch N]

  --backend           tfjs backend (default wasm; cpu; tensorflow where tfjs-node is installed; webgpu where
                        webgpu and @tensorflow/tfjs-backend-webgpu are, on a GPU or Mesa's software device)
  --only              workloads to run, comma-separated (default all):
                        Q     128 quadratics × 10 dims, LSTM 2×20, unroll 20
                        M     MNIST MLP 784-20-10 sigmoid, batch 128, LSTM 2×20 logAndSign, unroll 20
                        M100  M with an unroll of 100
                        M1000 M with an unroll of 1,000 (one timed unroll)
                        MR    M with RNNprop (its defaults) instead of the LSTM
                        MS    M with multiscale Adam, mlp combiner (its defaults), instead of the LSTM
                        MSR   the same with the rnn combiner
                        MNH   M with the normalised-history optimizer (its defaults: k 10, 50 hidden units)
                        MES   M meta-trained by ES (training.estimator es, one antithetic pair: 3 forward passes per unroll)
                        eval  1,000 steps of M with the learned optimizer (no tape)
  --runs              timed repetitions per workload (default Q 10, M 5, M100 3, M1000 1, MR 5, MS 5, MSR 5, MNH 5, MES 3, eval 3)
  --warmup            untimed repetitions first (default Q 2, M 2, M100 1, M1000 1, MR 2, MS 2, MSR 2, MNH 2, MES 1, eval 1)
  --kernel            training.kernel and the evaluation's kernel: auto (default: the fused kernel where the
                        learned optimizer has one), fused, or tfjs (the tape, as before the kernels)
  --checkpoint-every  training.checkpointEvery for Q, M, M100 (0: off; default: off, M100 50 without workers)
  --workers           training.workers for Q, M, M100, MR, MES (the kernel's tiles, or the tape's coordinates, over N threads); for eval, the kernel's threads
                        (default 0: none; with 2 or more M100 runs unsegmented unless --checkpoint-every is given)
  --q-batch           Q's number of ten-dimensional quadratics (default 128: 1,280 coordinates); raise it to see
                        at what size a GPU (--backend webgpu) overtakes the fused kernel`;

function positiveInt(flag: string, v: string | undefined, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} expects an integer ≥ ${min}, got ${JSON.stringify(v)}\n${USAGE}`);
  return n;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { backend: 'wasm', only: [...WORKLOADS], workers: 0 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => argv[++i];
    switch (flag) {
      case '--backend':
        args.backend = value() as BackendChoice;
        break;
      case '--only': {
        const names = (value() ?? '').split(',').filter(Boolean);
        const bad = names.filter((n) => !(WORKLOADS as readonly string[]).includes(n));
        if (bad.length || !names.length) throw new Error(`--only: unknown workload ${bad.join(', ') || '(none)'}\n${USAGE}`);
        args.only = names as WorkloadName[];
        break;
      }
      case '--runs':
        args.runs = positiveInt(flag, value());
        break;
      case '--warmup':
        args.warmup = positiveInt(flag, value(), 0);
        break;
      case '--checkpoint-every': {
        const n = positiveInt(flag, value(), 0);
        args.checkpointEvery = n === 0 ? null : n;
        break;
      }
      case '--workers':
        args.workers = positiveInt(flag, value(), 0);
        break;
      case '--kernel': {
        const k = value();
        if (k !== 'auto' && k !== 'tfjs' && k !== 'fused') throw new Error(`--kernel expects auto, tfjs or fused, got ${JSON.stringify(k)}\n${USAGE}`);
        args.kernel = k;
        break;
      }
      case '--q-batch':
        args.qBatch = positiveInt(flag, value());
        break;
      case '--child':
        args.child = value() as WorkloadName;
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown argument ${JSON.stringify(flag)}\n${USAGE}`);
    }
  }
  return args;
}

function specOf(name: WorkloadName, args: Args): WorkloadSpec {
  const d = DEFAULT_SPECS[name];
  return {
    runs: args.runs ?? d.runs,
    // The first meta-iteration also starts the episode: at least one warm-up keeps it out of the figures.
    warmup: Math.max(args.warmup ?? d.warmup, name === 'eval' ? 0 : 1),
    kernel: args.kernel,
    workers: args.workers,
    ...(args.qBatch !== undefined && { qBatch: args.qBatch }),
    ...(name !== 'eval' && {
      // Segments only matter to the tape: each of 2 tfjs workers holds half of M100's tape, so 100 steps fit without them (bench/results.md).
      checkpointEvery: args.checkpointEvery !== undefined ? args.checkpointEvery : args.workers >= 2 || args.kernel !== 'tfjs' ? null : d.checkpointEvery,
    }),
  };
}

/** Child: measures one workload and sends the result (with this process's peak RSS) to the parent. */
async function child(args: Args): Promise<void> {
  const name = args.child!;
  const m = await measure(name, args.backend, specOf(name, args));
  process.send!({ ok: true, measurement: m, maxRssKb: process.resourceUsage().maxRSS });
}

type ChildResult = { ok: true; measurement: Measurement; maxRssKb: number } | { ok: false; error: string; maxRssKb?: number };

function runChild(name: WorkloadName, argv: string[]): Promise<ChildResult> {
  return new Promise((resolve) => {
    const proc = fork(__filename, [...argv, '--child', name], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    // Stopping the benchmark stops the workload too.
    const stop = (signal: NodeJS.Signals) => {
      proc.kill(signal);
      process.exit(130);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let result: ChildResult | undefined;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      process.stderr.write(d);
    });
    proc.on('message', (m) => (result = m as ChildResult));
    proc.on('exit', (code, signal) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (result && code === 0) return resolve(result);
      const last = stderr.trim().split('\n').filter((l) => /error/i.test(l)).pop() ?? stderr.trim().split('\n').pop() ?? '';
      resolve({ ok: false, error: `${name} exited with ${signal ?? `code ${code}`}${last ? `: ${last.trim()}` : ''}` });
    });
  });
}

function quantiles(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]! };
}

const round = (x: number, digits = 4) => Number(x.toPrecision(digits));

function commit(): string | null {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: __dirname, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    // No git: bench/pack-portable.sh's archive says which commit it was packed from.
    try {
      return fs.readFileSync(path.join(__dirname, '..', '..', 'COMMIT'), 'utf8').trim();
    } catch {
      return null;
    }
  }
}

async function parent(args: Args, argv: string[]): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const l2l = (require('@l2l/core/package.json') as { version: string }).version;
  const sha = commit();
  let failed = 0;
  for (const name of args.only) {
    const load = os.loadavg()[0]!;
    const started = Date.now();
    const r = await runChild(name, argv);
    const common = { node: process.version, l2l, commit: sha, cpus: os.cpus().length, load_1min_before: round(load, 2) };
    if (!r.ok) {
      failed++;
      console.log(JSON.stringify({ name, backend: args.backend, error: r.error, ...common }));
      continue;
    }
    const m = r.measurement;
    const q = quantiles(m.times);
    const c = quantiles(m.cpuTimes);
    console.log(
      JSON.stringify({
        name,
        backend: m.backend,
        ...(m.device && { device: m.device }),
        median_s: round(q.median),
        min_s: round(q.min),
        max_s: round(q.max),
        // CPU time of the workload's process: steadier than wall time when other jobs share the cores.
        cpu_median_s: round(c.median),
        cpu_min_s: round(c.min),
        cpu_max_s: round(c.max),
        runs: m.times.length,
        warmup: m.warmup,
        // The process's maximum resident set: worker threads (training.workers) share it, so they are included.
        peak_rss_mb: Math.round(r.maxRssKb / 1024),
        ...(m.wasmHeapMb !== undefined && { wasm_heap_mb: Math.round(m.wasmHeapMb) }),
        coordinates: m.coordinates,
        unroll: m.unroll,
        ...(m.steps !== null && { steps: m.steps }),
        ...(m.checkpointEvery !== undefined && { checkpoint_every: m.checkpointEvery }),
        ...(m.workers !== undefined && { workers: m.workers }),
        ...(m.workerWasmHeapMb && { worker_wasm_heap_mb: m.workerWasmHeapMb.map((h) => Math.round(h)) }),
        ...(m.kernelMemoryMb !== undefined && { kernel_memory_mb: Math.round(m.kernelMemoryMb) }),
        ...(m.path !== undefined && { path: m.path }),
        what: m.what,
        times_s: m.times.map((t) => round(t)),
        cpu_times_s: m.cpuTimes.map((t) => round(t)),
        wall_s: round((Date.now() - started) / 1000, 3),
        tfjs_core: m.tfjsCore,
        ...common,
      }),
    );
  }
  return failed ? 1 : 0;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  if (args.child) return child(args);
  const childArgv = argv.filter((_, i) => argv[i] !== '--only' && argv[i - 1] !== '--only');
  process.exitCode = await parent(args, childArgv);
}

main().catch((e) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
