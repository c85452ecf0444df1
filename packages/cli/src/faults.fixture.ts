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

/** Runs the CLI in-process; a run that takes longer than `ms` fails the case as a hang. */
export async function runCli(argv: string[], cwd: string, ms = 60_000): Promise<CliRun> {
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
