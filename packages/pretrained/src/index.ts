import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ComponentRegistry, UserError, createContainer, disposeSnapshot, readSnapshot, registerTfOptimizer, tfOptimizerFromCheckpoint,
  type MetaOptimizer, type TfOptimizer,
} from '@l2l/core';
import { baselinesModule } from '@l2l/baselines';
import { metaOptimizersModule } from '@l2l/meta-optimizers';

/** Where the checkpoints live: one directory per name, each a snapshot (`l2l eval --optimizer DIR` takes it) with a card.md. */
export const PRETRAINED_DIR = path.join(__dirname, '..', 'checkpoints');

/** The prefix that names a pretrained optimizer wherever a checkpoint path is taken: `pretrained:quadratic-lstm`. */
export const PRETRAINED_PREFIX = 'pretrained:';

export interface PretrainedInfo {
  readonly name: string;
  /** The snapshot directory. */
  readonly dir: string;
  /** `{type, options}` of the learned optimizer. */
  readonly metaOptimizer: { type: string; options?: unknown };
  /** The card's first paragraph: what it was meta-trained on and how it does. */
  readonly summary: string;
  /** The card (markdown): training, commit, measured results, where it fails. */
  readonly card: string;
}

/** Every pretrained optimizer shipped with this package, by name. */
export function listPretrained(): PretrainedInfo[] {
  if (!fs.existsSync(PRETRAINED_DIR)) return [];
  return fs
    .readdirSync(PRETRAINED_DIR)
    .filter((name) => fs.existsSync(path.join(PRETRAINED_DIR, name, 'meta-optimizer.json')))
    .sort()
    .map((name) => info(name));
}

function info(name: string): PretrainedInfo {
  const dir = path.join(PRETRAINED_DIR, name);
  const card = fs.readFileSync(path.join(dir, 'card.md'), 'utf8');
  const summary = card.split(/\n\s*\n/).find((p) => p.trim() !== '' && !p.startsWith('#'))?.replace(/\s*\n\s*/g, ' ').trim() ?? '';
  return { name, dir, metaOptimizer: JSON.parse(fs.readFileSync(path.join(dir, 'meta-optimizer.json'), 'utf8')), summary, card };
}

/** The snapshot directory of a pretrained optimizer; an unknown name is an error listing the known ones. */
export function pretrainedDir(name: string): string {
  const known = listPretrained().map((p) => p.name);
  if (!known.includes(name)) {
    throw new UserError(`pretrained optimizer "${name}" does not exist (known: ${known.join(', ') || 'none'})`);
  }
  return path.join(PRETRAINED_DIR, name);
}

/** A checkpoint reference as a directory: `pretrained:<name>` becomes its directory, anything else is a path (resolved from `baseDir`). */
export function resolveCheckpoint(ref: string, baseDir = process.cwd()): string {
  return ref.startsWith(PRETRAINED_PREFIX) ? pretrainedDir(ref.slice(PRETRAINED_PREFIX.length)) : path.resolve(baseDir, ref);
}

let builtin: ComponentRegistry | undefined;

/** A registry with the built-in learned optimizers and baselines (what the pretrained checkpoints need). */
export function builtinRegistry(): ComponentRegistry {
  builtin ??= createContainer(metaOptimizersModule, baselinesModule).get(ComponentRegistry);
  return builtin;
}

/**
 * The learned optimizer of a checkpoint (`pretrained:<name>` or a directory), weights loaded; `.optimizer()`
 * is the functional optimizer (for `VariableOptimizer`, `evaluateOptimizer`). The caller disposes it.
 */
export function loadLearnedOptimizer(ref: string, registry: ComponentRegistry = builtinRegistry()): MetaOptimizer {
  const dir = resolveCheckpoint(ref);
  const snapshot = readSnapshot(dir);
  try {
    const meta = registry.create('meta-optimizer', snapshot.metaOptimizer, { seed: 0, baseDir: dir }, dir, 'meta-optimizer.json');
    try {
      meta.setWeights(snapshot.weights);
    } catch (e) {
      meta.dispose();
      throw new UserError(`${dir}: weights do not fit ${snapshot.metaOptimizer.type}: ${(e as Error).message}`, { cause: e });
    }
    return meta;
  } finally {
    disposeSnapshot(snapshot);
  }
}

/**
 * A checkpoint's learned optimizer as a `tf.Optimizer` for `model.compile({optimizer})`:
 * `learnedOptimizer('pretrained:quadratic-lstm')` or `learnedOptimizer('runs/q')`.
 */
export function learnedOptimizer(ref: string, registry: ComponentRegistry = builtinRegistry()): TfOptimizer {
  return tfOptimizerFromCheckpoint(resolveCheckpoint(ref), registry);
}

// tf.loadLayersModel of a model compiled with a learned optimizer rebuilds it with the built-in components.
registerTfOptimizer(builtinRegistry());
