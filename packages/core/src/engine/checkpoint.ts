import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ComponentConfig } from '../contracts/json';
import { validateWithSchema, type JsonSchema } from '../schema/validate';
import type { MetaOptimizer } from '../contracts/meta-optimizer';
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
  /** The snapshot directory it was read from (what messages name); unset for one built in memory. */
  dir?: string;
  metaOptimizer: ComponentConfig;
  weights: NamedTensors;
  trainer?: TrainerState;
  adam?: NamedTensors;
}

/** A system error (ENOSPC from a write, say) that names no path gets `file`, so its message can say where. */
function withPath(e: unknown, file: string): unknown {
  const x = e as NodeJS.ErrnoException;
  if (typeof x === 'object' && x !== null && typeof x.code === 'string' && !x.path) x.path = file;
  return e;
}

/** Writes a file by renaming a complete temporary file over it. */
export function writeFileAtomic(file: string, content: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, content);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a full disk leaves no half-written temporary behind
    throw withPath(e, file);
  }
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
    throw withPath(e, final);
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

/** What trainer.json must hold: the counters a resumed run continues from. */
const trainerStateSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['epoch', 'adamStep', 'bestValidation', 'bestEpoch', 'skipped'],
  properties: {
    epoch: { type: 'integer', minimum: 0 },
    adamStep: { type: 'integer', minimum: 0 },
    bestValidation: { type: ['number', 'null'] },
    bestEpoch: { type: ['integer', 'null'], minimum: 0 },
    skipped: { type: 'integer', minimum: 0 },
  },
};

const componentConfigSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: { type: { type: 'string', minLength: 1 }, options: { type: 'object' } },
};

/** Reads a snapshot; every file is checked (JSON, shape of its content, weights finite), errors name the file. */
export function readSnapshot(p: string, prefer: 'best' | 'latest' = 'best'): Snapshot {
  const dir = resolveSnapshotDir(p, prefer);
  const readJson = (f: string, schema: JsonSchema) => {
    const file = path.join(dir, f);
    let value: unknown;
    try {
      value = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UserError(`${file}: cannot read: ${(e as Error).message}`);
    }
    return validateWithSchema<unknown>(schema, value, file);
  };
  const metaOptimizer = readJson('meta-optimizer.json', componentConfigSchema) as ComponentConfig;
  const weights = readWeights(dir, 'weights');
  const snapshot: Snapshot = { dir, metaOptimizer, weights };
  try {
    if (fs.existsSync(path.join(dir, 'trainer.json'))) {
      snapshot.trainer = readJson('trainer.json', trainerStateSchema) as TrainerState;
      snapshot.adam = fs.existsSync(path.join(dir, 'adam.json')) ? readWeights(dir, 'adam') : {};
    }
  } catch (e) {
    disposeSnapshot(snapshot);
    throw e;
  }
  return snapshot;
}

/** True when a run directory holds a snapshot to resume from. */
export function hasSnapshot(runDir: string): boolean {
  return ['latest', '.latest.old'].some((n) => fs.existsSync(path.join(runDir, n, 'meta-optimizer.json')));
}

/**
 * Sets a snapshot's weights on `meta` (built from the snapshot's meta-optimizer.json or the experiment), after
 * checking them and the Adam moments against it; a mismatch names the file.
 */
export function loadSnapshotWeights(meta: MetaOptimizer, snapshot: Snapshot, experiment?: { metaOptimizer?: ComponentConfig }): void {
  const where = snapshot.dir ?? 'checkpoint';
  const expected = experiment?.metaOptimizer;
  if (expected && expected.type !== snapshot.metaOptimizer.type) {
    throw new UserError(`${path.join(where, 'meta-optimizer.json')}: type "${snapshot.metaOptimizer.type}" differs from the experiment's metaOptimizer "${expected.type}"`);
  }
  if (expected) {
    const wanted = (expected.options ?? {}) as Record<string, unknown>;
    const changed = Object.entries(snapshot.metaOptimizer.options ?? {}).filter(([k, v]) => k in wanted && JSON.stringify(v) !== JSON.stringify(wanted[k]));
    if (changed.length) {
      throw new UserError(`${path.join(where, 'meta-optimizer.json')}: differs from the experiment's metaOptimizer in ${changed.map(([k]) => `options.${k}`).join(', ')}`);
    }
  }
  try {
    meta.setWeights(snapshot.weights);
  } catch (e) {
    throw new UserError(`${path.join(where, 'weights.json')}: does not fit meta-optimizer "${meta.type}": ${(e as Error).message}`, { cause: e });
  }
  // The outer optimizer's state: a tensor per weight and slot (Adam's m and v; any optimizer's `<weight>/<slot>`).
  for (const [key, t] of Object.entries(snapshot.adam ?? {})) {
    const slash = key.lastIndexOf('/');
    const weight = slash > 0 ? snapshot.weights[key.slice(0, slash)] : undefined;
    if (!weight || weight.shape.join() !== t.shape.join()) {
      throw new UserError(`${path.join(where, 'adam.json')}: tensor "${key}" matches no weight of the same shape (expected <weight>/m or <weight>/v, or <weight>/<slot> for another outer optimizer)`);
    }
  }
}

/** Runs each clean-up even when one throws, so the error that led here is not hidden; the first failure is dropped. */
export function disposeQuietly(...steps: Array<() => void>): void {
  for (const step of steps) {
    try {
      step();
    } catch {
      // The process is already failing; freeing is best effort.
    }
  }
}

/** Removes temporaries (`*.tmp-PID`) left in a run directory by a process that is gone (killed mid-write). */
export function removeStaleTemporaries(runDir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(runDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = /\.tmp-(\d+)$/.exec(entry);
    if (m && !isAlive(Number(m[1]))) fs.rmSync(path.join(runDir, entry), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  return pid !== process.pid && processAlive(pid); // ours are never left between writes
}

/** Whether a process of this id runs on this machine (one we may not signal counts as running). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function disposeSnapshot(snapshot: Snapshot): void {
  disposeTree([snapshot.weights, snapshot.adam ?? {}]);
}

/** Writes the run's experiment (any JSON: the engine does not read it) as `experiment.json`. */
export function writeExperiment(runDir: string, experiment: object): void {
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
