import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as lockfile from 'proper-lockfile';
import { hasSnapshot, processAlive, UserError } from '@l2l/core';

/**
 * Output directories: checked (and created) before any work starts, and never emptied unless l2l wrote them.
 * l2l recognises its own directories by a marker file; a directory holding anything else is the user's.
 */
export const OUTPUT_MARKER = '.l2l-output';

export type OutputKind = 'train' | 'eval' | 'report';

/** The lock a training run holds on its directory (proper-lockfile's directory), and who holds it. */
export const OUTPUT_LOCK = '.l2l-lock';
const LOCK_OWNER = '.l2l-lock.json';

/** The names each kind of output directory may hold besides the marker (temporaries of atomic writes included). */
const OWN_NAMES: Record<OutputKind, RegExp> = {
  train: /^(experiment\.json|log\.csv|latest|best|\.(latest|best)\.old|\.l2l-lock|\.l2l-lock\.json)$|\.tmp-\d+$/,
  eval: /^(results\.json|results\.md|curves\.csv|loss-curves\.svg)$|\.tmp-\d+$/,
  report: /^[\w.-]+\.(md|svg)$|\.tmp-\d+$/,
};

function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  const words: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    ENOTDIR: 'a part of the path is not a directory',
    EEXIST: 'already exists',
    ELOOP: 'too many symbolic links',
    ENAMETOOLONG: 'name too long',
  };
  return (code && words[code]) ?? (e as Error)?.message ?? String(e);
}

function readMarker(dir: string): OutputKind | null {
  try {
    const kind = (JSON.parse(fs.readFileSync(path.join(dir, OUTPUT_MARKER), 'utf8')) as { kind?: unknown }).kind;
    return kind === 'train' || kind === 'eval' || kind === 'report' ? kind : null;
  } catch {
    return null;
  }
}

/**
 * The entries of `dir` that l2l did not write: anything but the names a `kind` directory holds, where a
 * subdirectory counts as l2l's when it carries the marker and holds only l2l's files itself (an eval inside a run).
 */
function foreignEntries(dir: string, kind: OutputKind): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === OUTPUT_MARKER) continue;
    if (!entry.isSymbolicLink() && OWN_NAMES[kind].test(entry.name)) continue;
    if (entry.isDirectory()) {
      const sub = path.join(dir, entry.name);
      const subKind = readMarker(sub);
      if (subKind && foreignEntries(sub, subKind).length === 0) continue;
    }
    found.push(entry.isDirectory() ? `${entry.name}/` : entry.name);
  }
  return found.sort();
}

function listShort(names: string[]): string {
  return names.length > 6 ? `${names.slice(0, 6).join(', ')} and ${names.length - 6} more` : names.join(', ');
}

/**
 * Makes sure `dir` (named `shown` in messages, the flag `flag`) can take the output, before any work: a file, a
 * dangling symbolic link, a path that cannot be created or a directory holding the user's files are refused with
 * one line naming what was found. Creates missing directories one level at a time (never a recursive mkdir, which
 * loops on paths like /proc/x), and writes the marker, which proves the directory writable.
 */
function ensureDirectory(dir: string, shown: string, flag: string): 'created' | 'exists' {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.lstatSync(dir);
  } catch (e) {
    // ENOTDIR: a file on the way, which the walk up below names.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new UserError(`${flag} ${shown}: cannot use it: ${errnoText(e)}`);
  }
  if (stat?.isSymbolicLink()) {
    let target: fs.Stats;
    try {
      target = fs.statSync(dir);
    } catch {
      throw new UserError(`${flag} ${shown}: is a symbolic link to a missing target (${fs.readlinkSync(dir)}); remove the link or choose another ${flag}`);
    }
    if (!target.isDirectory()) throw new UserError(`${flag} ${shown}: is a symbolic link to a file, not a directory; choose another ${flag}`);
    return 'exists';
  }
  if (stat) {
    if (!stat.isDirectory()) throw new UserError(`${flag} ${shown}: is a file, not a directory; l2l writes a directory there and never replaces a file: choose another ${flag}`);
    return 'exists';
  }
  // Create the missing levels, outermost first.
  const missing: string[] = [];
  let at = dir;
  for (;;) {
    const parent = path.dirname(at);
    missing.unshift(at);
    if (parent === at) break;
    let s: fs.Stats | undefined;
    try {
      s = fs.statSync(parent);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // A dangling symbolic link on the way is a dead end, not a directory to create.
        if (isLink(parent)) throw new UserError(`${flag} ${shown}: ${parent} is a symbolic link to a missing target`);
        at = parent;
        continue;
      }
      throw new UserError(`${flag} ${shown}: cannot use ${parent}: ${errnoText(e)}`);
    }
    if (!s.isDirectory()) throw new UserError(`${flag} ${shown}: ${parent} is a file, not a directory`);
    break;
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(d).isDirectory()) continue;
      throw new UserError(`${flag} ${shown}: cannot create directory ${d}: ${errnoText(e)}`);
    }
  }
  return 'created';
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function writeMarker(dir: string, kind: OutputKind, shown: string, flag: string): void {
  try {
    fs.writeFileSync(path.join(dir, OUTPUT_MARKER), JSON.stringify({ kind, note: 'written by l2l: this directory may be replaced by l2l --force' }) + '\n');
  } catch (e) {
    throw new UserError(`${flag} ${shown}: cannot write there: ${errnoText(e)}`);
  }
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

function readOwner(dir: string): LockOwner | null {
  try {
    const o = JSON.parse(fs.readFileSync(path.join(dir, LOCK_OWNER), 'utf8')) as Partial<LockOwner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' ? { pid: o.pid, host: o.host, since: String(o.since ?? '') } : null;
  } catch {
    return null;
  }
}

/**
 * How long a lock nobody refreshes stays valid. proper-lockfile refreshes it from a timer, and training blocks the
 * event loop for as long as an episode or a validation takes, so this is long; a lock whose owner is gone from this
 * machine (kill -9) is taken over at once instead, by its recorded process id.
 */
const LOCK_STALE_MS = 10 * 60_000;

/**
 * Locks `dir` (which exists) for one run: a second run on it is refused with one line naming who holds it. A lock
 * left by a process that no longer runs on this machine is taken over; one from another machine once it is stale.
 * Returns the release (also done by proper-lockfile when the process exits on a signal).
 */
function lockOutput(dir: string, shown: string, flag: string, onLost: (message: string) => void): () => void {
  const take = () =>
    lockfile.lockSync(dir, {
      lockfilePath: path.join(dir, OUTPUT_LOCK),
      realpath: false,
      stale: LOCK_STALE_MS,
      // Another process took the lock over (this one stalled past the stale time): say so rather than crash.
      onCompromised: (e) => onLost(`${flag} ${shown}: lost its lock (${e.message}); another run may be writing there`),
    });
  const busy = (owner: LockOwner | null) =>
    new UserError(
      `${flag} ${shown}: in use by another l2l run (${owner ? `pid ${owner.pid} on ${owner.host}${owner.since ? ` since ${owner.since}` : ''}` : 'owner unknown'}); ` +
        `wait for it to end or choose another ${flag} (a lock whose run is gone from this machine is taken over at once, any other after ${LOCK_STALE_MS / 60_000} minutes)`,
    );
  let release: () => void;
  try {
    release = take();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw new UserError(`${flag} ${shown}: cannot lock it: ${errnoText(e)}`);
    const owner = readOwner(dir);
    if (!owner || owner.host !== os.hostname() || processAlive(owner.pid)) throw busy(owner);
    // Left by a run killed with -9 (nothing ran its exit handlers): its process is gone.
    fs.rmSync(path.join(dir, OUTPUT_LOCK), { recursive: true, force: true });
    try {
      release = take();
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'ELOCKED') throw busy(readOwner(dir));
      throw new UserError(`${flag} ${shown}: cannot lock it: ${errnoText(again)}`);
    }
  }
  try {
    fs.writeFileSync(path.join(dir, LOCK_OWNER), JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }) + '\n');
  } catch (e) {
    release();
    throw new UserError(`${flag} ${shown}: cannot write there: ${errnoText(e)}`);
  }
  // The lock goes first, then its owner: a kill -9 between the two leaves an owner without a lock, which the next
  // run overwrites, not a lock without an owner, which would stay "owner unknown" until it is stale.
  return () => {
    try {
      release();
    } catch {
      // Already released or taken over: nothing of ours is left to remove.
    }
    // Only our own record: another run may have taken the lock in between and written its own.
    if (readOwner(dir)?.pid === process.pid) fs.rmSync(path.join(dir, LOCK_OWNER), { force: true });
  };
}

export interface PrepareOptions {
  /** How messages show the path (as the user gave it). */
  shown: string;
  /** The flag that named it (`--out`). */
  flag?: string;
  /** train: continue the run (its files are kept). */
  resume?: boolean;
  /** train: discard a previous run (only one l2l wrote). */
  force?: boolean;
}

/**
 * Checks and prepares an output directory of `kind` before any work starts; returns its absolute path.
 * train: an empty or missing directory, a run to --resume, a run killed before its first snapshot (started over),
 * or a run to discard with --force. eval/report: a missing or empty directory, or one that l2l's own output of
 * the same kind fills (its files are overwritten). Anything else is refused, naming what was found.
 */
export function prepareOutput(dir: string, kind: OutputKind, options: PrepareOptions): string {
  return prepare(dir, kind, options).dir;
}

/**
 * `prepareOutput` for a training run, which also locks the directory before anything in it is removed (`--force`) or
 * written, so that two runs on one directory cannot mix their files; call `release` when the run ends.
 */
export function prepareLockedOutput(dir: string, kind: OutputKind, options: PrepareOptions & { onLost: (message: string) => void }): { dir: string; release: () => void } {
  return prepare(dir, kind, options, options.onLost);
}

function prepare(dir: string, kind: OutputKind, options: PrepareOptions, onLost?: (message: string) => void): { dir: string; release: () => void } {
  const { shown } = options;
  const flag = options.flag ?? '--out';
  const abs = path.resolve(dir);
  const state = ensureDirectory(abs, shown, flag);
  let release = () => {};
  const lock = () => {
    if (onLost) release = lockOutput(abs, shown, flag, onLost);
  };
  try {
    if (state === 'exists') checkExisting(abs, kind, options, flag, lock);
    else lock();
    writeMarker(abs, kind, shown, flag);
  } catch (e) {
    release();
    throw e;
  }
  return { dir: abs, release };
}

/** What `prepare` checks in an existing directory; `lock` runs after the checks and before anything is removed. */
function checkExisting(abs: string, kind: OutputKind, options: PrepareOptions, flag: string, lock: () => void): void {
  const { shown } = options;
  const marker = readMarker(abs);
  // eval and report only overwrite their own files, which may change with versions: their marker is enough, and
  // without it every file is the user's. A training run from before markers is recognised by its names alone.
  const foreign = kind !== 'train' ? (marker === kind ? [] : fs.readdirSync(abs).sort()) : foreignEntries(abs, kind);
  if (foreign.length) {
    const other = marker && marker !== kind ? ` (an l2l ${marker} output)` : '';
    throw new UserError(
      `${flag} ${shown}: holds files l2l did not write${other}: ${listShort(foreign)}; l2l never deletes or mixes with them: choose another ${flag}`,
    );
  }
  if (marker && marker !== kind) throw new UserError(`${flag} ${shown}: holds an l2l ${marker} output; choose another ${flag}`);
  lock();
  if (kind === 'train' && !options.resume) {
    if (hasSnapshot(abs) && !options.force) {
      throw new UserError(`${flag} ${shown} already holds a training run; pass --resume to continue it, --force to discard it, or choose another ${flag}`);
    }
    // --force, or a run killed before its first snapshot: nothing in it is worth keeping (but the lock).
    for (const entry of fs.readdirSync(abs)) {
      if (entry !== OUTPUT_MARKER && entry !== OUTPUT_LOCK && entry !== LOCK_OWNER) fs.rmSync(path.join(abs, entry), { recursive: true, force: true });
    }
  }
}

/**
 * Checks an output location that l2l shares with other files (a report's page in docs/, its results directory):
 * it must be a directory or creatable as one (created now), never a file or a dangling link. Nothing is removed.
 */
export function prepareSharedOutput(dir: string, shown: string, flag = '--out'): string {
  const abs = path.resolve(dir);
  ensureDirectory(abs, shown, flag);
  try {
    fs.accessSync(abs, fs.constants.W_OK);
  } catch (e) {
    throw new UserError(`${flag} ${shown}: cannot write there: ${errnoText(e)}`);
  }
  return abs;
}
