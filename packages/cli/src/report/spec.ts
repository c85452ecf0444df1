import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile, UserError, validateWithSchema, type JsonSchema } from '@l2l/core';

/** One evaluation of a report: a config evaluated with the report's checkpoints (never retrained on it). */
export interface ReportEvaluation {
  /** Short kebab-case id: names the results folder and the plot file. */
  name: string;
  /** Heading on the page (default: the name). */
  title: string;
  /** A paragraph shown under the heading (what this evaluation changes, what the paper reports). */
  note: string | null;
  /** Experiment config, relative to the spec file. */
  config: string;
  /** Optimizee steps per run (default: the config's evaluation.steps). */
  steps: number | null;
  /** Held-out tasks (default: the spec's tasks). */
  tasks: number | null;
  /** The checkpoints (by name) it runs, in spec order (null or absent: every one): each optimizee its own learned optimizers. */
  checkpoints?: string[] | null;
}

/** One learned optimizer of a report: an `l2l train` run directory, as the spec writes it. */
export interface ReportCheckpoint {
  /** Kebab-case label on the page and in file names (default: the meta-optimizer's type). */
  name?: string;
  /** Run directory, relative to the spec file. */
  dir: string;
  /** The experiment config that trains it, relative to the spec file. */
  config: string | null;
}

/** A checkpoint with its name settled and its paths absolute. */
export interface ResolvedCheckpoint {
  name: string;
  dir: string;
  config: string | null;
  /** Where the spec sets it (`checkpoint`, `checkpoints[1]`), for messages. */
  field: string;
  /** Its directory as the spec writes it. */
  specDir: string;
}

/** A report spec (`l2l report <spec>`) as written, with defaults applied. */
export interface ReportSpec {
  title: string;
  description: string | null;
  /** A paragraph under the timing table (how busy the machine was, say). */
  timingNote: string | null;
  /** One learned optimizer (the same as a one-element `checkpoints`). */
  checkpoint: { dir: string; config: string | null } | null;
  /** Several learned optimizers, compared with each other and with the baselines. */
  checkpoints: ReportCheckpoint[] | null;
  results: string;
  out: string | null;
  page: string;
  tasks: number;
  evaluations: ReportEvaluation[];
}

const KEBAB = '^[a-z0-9][a-z0-9-]*$';

export const reportSpecSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['title', 'results', 'evaluations'],
  properties: {
    $schema: { type: 'string', description: 'Path or URL of a schema, for editors.' },
    title: { type: 'string', minLength: 1, description: 'Title of the page.' },
    description: { type: ['string', 'null'], default: null, description: 'A paragraph under the title (markdown).' },
    timingNote: { type: ['string', 'null'], default: null, description: 'A paragraph under the timing table (markdown): what else ran on the machine, say.' },
    checkpoint: {
      type: ['object', 'null'],
      default: null,
      description:
        'The learned optimizer every evaluation runs: an `l2l train` run directory (best/ is used, else latest/); the same as a one-element "checkpoints" (give one of the two). null: baselines only.',
      additionalProperties: false,
      required: ['dir'],
      properties: {
        dir: { type: 'string', minLength: 1, description: 'Run directory, relative to the spec file.' },
        config: {
          type: ['string', 'null'],
          default: null,
          description: 'The experiment config that trains it (`l2l report --train` runs `l2l train <config> --out <dir>` when the directory holds no checkpoint).',
        },
      },
    },
    checkpoints: {
      type: ['array', 'null'],
      minItems: 1,
      default: null,
      description:
        'The learned optimizers every evaluation runs, in page order, each compared with the baselines and with each other: `l2l train` run directories (best/ is used, else latest/). null: see "checkpoint".',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['dir'],
        properties: {
          name: {
            type: 'string',
            pattern: KEBAB,
            description: 'Kebab-case label on the page and in file names (default: the meta-optimizer type in <dir>/experiment.json, else in config, else the directory\'s base name).',
          },
          dir: { type: 'string', minLength: 1, description: 'Run directory, relative to the spec file.' },
          config: {
            type: ['string', 'null'],
            default: null,
            description: 'The experiment config that trains it (`l2l report --train` runs `l2l train <config> --out <dir>` when the directory holds no checkpoint), relative to the spec file.',
          },
        },
      },
    },
    results: { type: 'string', minLength: 1, description: 'Directory for each evaluation\'s raw results (<results>/<name>/results.json, curves.csv, run.json), relative to the spec file.' },
    out: { type: ['string', 'null'], default: null, description: 'Directory of the page and its SVG plots, relative to the spec file (--out overrides).' },
    page: { type: 'string', pattern: '^[^/\\\\]+\\.md$', default: 'results.md', description: 'File name of the page (markdown) in out.' },
    tasks: { type: 'integer', minimum: 1, default: 50, description: 'Held-out (test-split) tasks per evaluation, paired across optimizers (each evaluation may override; ≥ 50 for MNIST at ≤ 200 steps, ≥ 100 for quadratics).' },
    evaluations: {
      type: 'array',
      minItems: 1,
      description: 'The evaluations, in page order.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'config'],
        properties: {
          name: { type: 'string', pattern: KEBAB, description: 'Kebab-case id (results folder and plot file name).' },
          title: { type: 'string', minLength: 1, description: 'Heading (default: the name).' },
          note: { type: ['string', 'null'], default: null, description: 'A paragraph under the heading (markdown).' },
          config: { type: 'string', minLength: 1, description: 'Experiment config, relative to the spec file.' },
          steps: { type: ['integer', 'null'], minimum: 1, default: null, description: 'Optimizee steps per run (null: the config\'s evaluation.steps).' },
          tasks: { type: ['integer', 'null'], minimum: 1, default: null, description: 'Held-out tasks (null: the spec\'s tasks).' },
          checkpoints: {
            type: ['array', 'null'],
            items: { type: 'string', minLength: 1 },
            minItems: 1,
            uniqueItems: true,
            default: null,
            description: 'The checkpoints this evaluation runs, by name (null: every one of the spec\'s): each optimizee with the learned optimizers trained on it, say.',
          },
        },
      },
    },
  },
};

/** A spec read from a file: paths resolved against the file's directory. */
export interface LoadedReportSpec extends ReportSpec {
  /** The spec file as given on the command line, and absolute. */
  file: string;
  path: string;
  /** Absolute directory relative paths resolve from. */
  baseDir: string;
  /** Absolute paths. */
  resolved: {
    /** The learned optimizers, in spec order (empty: baselines only); `checkpoint` is a one-element list. */
    checkpoints: ResolvedCheckpoint[];
    results: string;
    out: string | null;
    configs: Record<string, string>;
  };
}

/** Reads and validates a report spec; every problem is a `UserError` naming the file and the field. */
export function loadReportSpec(file: string, cwd: string): LoadedReportSpec {
  const abs = path.resolve(cwd, file);
  let raw: unknown;
  try {
    raw = readJsonFile(abs);
  } catch (e) {
    const msg = (e as Error).message;
    throw new UserError(msg.startsWith(abs) ? file + msg.slice(abs.length) : msg, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${file}: a report spec must be a JSON object`);
  const spec = validateWithSchema<ReportSpec & { $schema?: string }>(reportSpecSchema, raw, file);
  delete spec.$schema;
  const seen = new Set<string>();
  for (const e of spec.evaluations) {
    if (seen.has(e.name)) throw new UserError(`${file}: evaluations: the name "${e.name}" is used twice`);
    seen.add(e.name);
    e.title ??= e.name;
  }
  const baseDir = path.dirname(abs);
  const at = (p: string) => path.resolve(baseDir, p);
  if (spec.checkpoint && spec.checkpoints) {
    throw new UserError(`${file}: give "checkpoint" (one learned optimizer) or "checkpoints" (a list), not both`);
  }
  const written: Array<ReportCheckpoint & { field: string }> = spec.checkpoints
    ? spec.checkpoints.map((c, i) => ({ ...c, field: `checkpoints[${i}]` }))
    : spec.checkpoint
      ? [{ ...spec.checkpoint, field: 'checkpoint' }]
      : [];
  const checkpoints = written.map((c): ResolvedCheckpoint => {
    const dir = at(c.dir);
    const config = c.config === null ? null : at(c.config);
    return { name: c.name ?? defaultName(file, c.field, dir, config), dir, config, field: c.field, specDir: c.dir };
  });
  const names = new Map<string, string>();
  for (const c of checkpoints) {
    const other = names.get(c.name);
    if (other !== undefined) {
      throw new UserError(`${file}: ${other} and ${c.field} are both named "${c.name}"; set "name" on them to tell them apart on the page and in file names`);
    }
    names.set(c.name, c.field);
  }
  spec.evaluations.forEach((e, i) => {
    const unknown = (e.checkpoints ?? []).find((n) => !names.has(n));
    if (unknown !== undefined) {
      throw new UserError(`${file}: evaluations[${i}].checkpoints: no checkpoint named "${unknown}" (the spec's are ${[...names.keys()].map((n) => `"${n}"`).join(', ') || 'none'})`);
    }
  });
  return {
    ...spec,
    file,
    path: abs,
    baseDir,
    resolved: {
      checkpoints,
      results: at(spec.results),
      out: spec.out === null ? null : at(spec.out),
      configs: Object.fromEntries(spec.evaluations.map((e) => [e.name, at(e.config)])),
    },
  };
}

/** The `metaOptimizer.type` of a JSON experiment file, if it has one. */
function metaOptimizerType(file: string): string | null {
  if (!fs.existsSync(file)) return null;
  try {
    const type = (JSON.parse(fs.readFileSync(file, 'utf8')) as { metaOptimizer?: { type?: unknown } })?.metaOptimizer?.type;
    return typeof type === 'string' ? type : null;
  } catch {
    return null;
  }
}

/**
 * A checkpoint's default label: the meta-optimizer type its run directory's experiment.json records, else the
 * one its config names (so a checkpoint that `--train` is about to create keeps its name once trained), else
 * the directory's base name.
 */
function defaultName(file: string, field: string, dir: string, config: string | null): string {
  const name = metaOptimizerType(path.join(dir, 'experiment.json')) ?? (config === null ? null : metaOptimizerType(config)) ?? path.basename(dir);
  if (!new RegExp(KEBAB).test(name)) {
    throw new UserError(`${file}: ${field}: its default name "${name}" is not kebab-case (a-z, 0-9, -); set "name"`);
  }
  return name;
}

/** The checkpoints an evaluation runs, in spec order, with their positions among the spec's. */
export function evaluationCheckpoints(spec: LoadedReportSpec, entry: ReportEvaluation): Array<{ checkpoint: ResolvedCheckpoint; index: number }> {
  return spec.resolved.checkpoints
    .map((checkpoint, index) => ({ checkpoint, index }))
    .filter(({ checkpoint }) => !entry.checkpoints || entry.checkpoints.includes(checkpoint.name));
}
