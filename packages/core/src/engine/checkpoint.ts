import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExperimentConfig } from '../config/experiment';
import type { ComponentConfig } from '../contracts/json';
import { UserError } from '../errors';
import { disposeTree, type NamedTensors } from '../tensor-tree';
import type { TrainerState } from './meta-trainer';
import { readWeights, writeWeights } from './weights-io';

/**
 * A checkpoint directory (`l2l train --out DIR`):
 *   experiment.json  the resolved experiment (defaults applied)
 *   log.csv          one row per epoch
 *   latest/          the state after the last completed epoch (resumable)
 *   best/            the weights with the best validation loss so far
 * Each snapshot holds meta-optimizer.json ({type, options}), weights.json + weights.bin (named tensors) and,
 * for resuming, trainer.json + adam.json + adam.bin. Snapshots are written to a temporary directory and
 * renamed into place, so a crash never leaves a half-written one.
 */
export interface Snapshot {
  metaOptimizer: ComponentConfig;
  weights: NamedTensors;
  trainer?: TrainerState;
  adam?: NamedTensors;
}

/** Writes a file by renaming a complete temporary file over it. */
export function writeFileAtomic(file: string, content: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

export function writeSnapshot(runDir: string, name: string, snapshot: Snapshot): string {
  fs.mkdirSync(runDir, { recursive: true });
  const final = path.join(runDir, name);
  const tmp = path.join(runDir, `.${name}.tmp-${process.pid}`);
  const old = path.join(runDir, `.${name}.old`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    fs.writeFileSync(path.join(tmp, 'meta-optimizer.json'), JSON.stringify(snapshot.metaOptimizer, null, 2) + '\n');
    writeWeights(tmp, 'weights', snapshot.weights);
    if (snapshot.trainer) fs.writeFileSync(path.join(tmp, 'trainer.json'), JSON.stringify(snapshot.trainer, null, 2) + '\n');
    if (snapshot.adam) writeWeights(tmp, 'adam', snapshot.adam);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true }); // the previous snapshot stays as it was
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(final)) fs.renameSync(final, old);
  fs.renameSync(tmp, final);
  fs.rmSync(old, { recursive: true, force: true });
  return final;
}

/** The snapshot directory a path names: a snapshot itself, or a run directory (its best/, else latest/). */
export function resolveSnapshotDir(p: string, prefer: 'best' | 'latest' = 'best'): string {
  if (fs.existsSync(path.join(p, 'meta-optimizer.json'))) return p;
  const order = prefer === 'best' ? ['best', 'latest'] : ['latest'];
  for (const name of order) {
    for (const candidate of [name, `.${name}.old`]) {
      const dir = path.join(p, candidate);
      if (fs.existsSync(path.join(dir, 'meta-optimizer.json'))) return dir;
    }
  }
  throw new UserError(`${p}: no checkpoint here (expected meta-optimizer.json, or a ${order.join('/ or ')}/ snapshot from l2l train)`);
}

export function readSnapshot(p: string, prefer: 'best' | 'latest' = 'best'): Snapshot {
  const dir = resolveSnapshotDir(p, prefer);
  const readJson = (f: string) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    } catch (e) {
      throw new UserError(`${path.join(dir, f)}: cannot read: ${(e as Error).message}`);
    }
  };
  const metaOptimizer = readJson('meta-optimizer.json') as ComponentConfig;
  const weights = readWeights(dir, 'weights');
  const snapshot: Snapshot = { metaOptimizer, weights };
  if (fs.existsSync(path.join(dir, 'trainer.json'))) {
    snapshot.trainer = readJson('trainer.json') as TrainerState;
    snapshot.adam = fs.existsSync(path.join(dir, 'adam.json')) ? readWeights(dir, 'adam') : {};
  }
  return snapshot;
}

export function disposeSnapshot(snapshot: Snapshot): void {
  disposeTree([snapshot.weights, snapshot.adam ?? {}]);
}

export function writeExperiment(runDir: string, experiment: ExperimentConfig): void {
  fs.mkdirSync(runDir, { recursive: true });
  writeFileAtomic(path.join(runDir, 'experiment.json'), JSON.stringify(experiment, null, 2) + '\n');
}

/** Minimal CSV for logs: header from the first row's keys; numbers as they are, strings quoted when needed. */
export function toCsv(rows: Array<Record<string, string | number | boolean | null | undefined>>): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]!);
  const cell = (v: unknown) => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [keys.join(','), ...rows.map((r) => keys.map((k) => cell(r[k])).join(','))].join('\n') + '\n';
}
