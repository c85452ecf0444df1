import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from './main';

/**
 * Shared by the fault suites (faults.spec.ts in-process, faults-process.spec.ts with real processes): the CLI run
 * under a timeout, the toy experiment, and the "nothing lost" check (every file present before a fault is still
 * there, byte for byte, after it).
 */

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `L2L_FAULTS_BIN=<a built bin.js>`: each case runs that binary as a child process, killed after `ms`, instead of
 * the CLI in-process. For the table against older commits (bench/fault-table-before.sh), whose hangs block the
 * event loop, so an in-process timeout never fires; the tensor-leak check then sees nothing.
 */
const FAULTS_BIN = process.env.L2L_FAULTS_BIN;

/** tfjs's banner on a child's stderr (jest.setup.js silences it in-process). */
const TFJS_BANNER = /\n?=+\nHi, looks like you are running TensorFlow\.js in Node\.js\.[^\n]*\n=+\n/g;

function runBin(bin: string, argv: string[], cwd: string, ms: number): CliRun {
  const r = spawnSync(process.execPath, [bin, ...argv], { cwd, encoding: 'utf8', timeout: ms, killSignal: 'SIGKILL', maxBuffer: 64 * 2 ** 20 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') throw new Error(`l2l ${argv.join(' ')}: no answer within ${ms} ms (a hang)`);
  if (r.signal) throw new Error(`l2l ${argv.join(' ')}: killed by ${r.signal}`);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.replace(TFJS_BANNER, '') };
}

/** Runs the CLI in-process; a run that takes longer than `ms` fails the case as a hang. */
export async function runCli(argv: string[], cwd: string, ms = 60_000): Promise<CliRun> {
  if (FAULTS_BIN) return runBin(FAULTS_BIN, argv, cwd, Math.min(ms, Number(process.env.L2L_FAULTS_TIMEOUT_MS ?? ms)));
  let stdout = '';
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`l2l ${argv.join(' ')}: no answer within ${ms} ms (a hang)`)), ms);
  });
  try {
    const code = await Promise.race([main(argv, { cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) }), hang]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** A stack trace line, or the CLI's own word for a bug. */
export const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\))$|internal error/m;

/** The toy experiment: seconds to train on the cpu backend. */
export function toyExperiment(overrides: Record<string, unknown> = {}, training: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'toy',
    backend: 'cpu',
    seed: 3,
    optimizee: { type: 'quadratic', options: { dims: 3, batch: 2 } },
    metaOptimizer: { type: 'lstm', options: { hidden: 4 } },
    training: { epochs: 2, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 2, ...training },
    evaluation: { steps: 4, tasks: 2, baselines: [{ type: 'sgd' }], tuning: { learningRates: [0.1], tasks: 1 } },
    ...overrides,
  };
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
}

/** Every regular file under `dir` (symbolic links not followed), with the hash of its contents. */
export function fileHashes(dir: string, skip: (rel: string) => boolean = () => false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const abs = path.join(d, e.name);
      const rel = path.relative(dir, abs);
      if (skip(rel)) continue;
      if (e.isDirectory()) walk(abs);
      else if (e.isFile()) out.set(rel, crypto.createHash('sha1').update(fs.readFileSync(abs)).digest('hex'));
      else if (e.isSymbolicLink()) out.set(rel, `link:${fs.readlinkSync(abs)}`);
    }
  };
  walk(dir);
  return out;
}

/** The files of `before` that are gone or changed now: what a fault destroyed. */
export function lostFiles(dir: string, before: Map<string, string>): string[] {
  const after = fileHashes(dir);
  return [...before].filter(([rel, hash]) => after.get(rel) !== hash).map(([rel]) => rel);
}

/** The user's own files every case directory starts with: what must survive every fault. */
export function writeUserFiles(dir: string): void {
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'my notes\n');
  fs.mkdirSync(path.join(dir, 'keep'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'keep', 'data.csv'), 'a,b\n1,2\n');
}
