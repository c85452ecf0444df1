import * as path from 'node:path';
import { readJsonFile, UserError, validateWithSchema, type JsonSchema } from '@l2l/core';

/** One evaluation of a report: a config evaluated with the report's checkpoint (never retrained on it). */
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
}

/** A report spec (`l2l report <spec>`) as written, with defaults applied. */
export interface ReportSpec {
  title: string;
  description: string | null;
  /** A paragraph under the timing table (how busy the machine was, say). */
  timingNote: string | null;
  checkpoint: { dir: string; config: string | null } | null;
  results: string;
  out: string | null;
  page: string;
  tasks: number;
  evaluations: ReportEvaluation[];
}

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
      description: 'The learned optimizer every evaluation runs: an `l2l train` run directory (best/ is used, else latest/). null: baselines only.',
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
    results: { type: 'string', minLength: 1, description: 'Directory for each evaluation\'s raw results (<results>/<name>/results.json, curves.csv, run.json), relative to the spec file.' },
    out: { type: ['string', 'null'], default: null, description: 'Directory of the page and its SVG plots, relative to the spec file (--out overrides).' },
    page: { type: 'string', pattern: '^[^/\\\\]+\\.md$', default: 'results.md', description: 'File name of the page (markdown) in out.' },
    tasks: { type: 'integer', minimum: 1, default: 10, description: 'Held-out tasks per evaluation (each evaluation may override).' },
    evaluations: {
      type: 'array',
      minItems: 1,
      description: 'The evaluations, in page order.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'config'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$', description: 'Kebab-case id (results folder and plot file name).' },
          title: { type: 'string', minLength: 1, description: 'Heading (default: the name).' },
          note: { type: ['string', 'null'], default: null, description: 'A paragraph under the heading (markdown).' },
          config: { type: 'string', minLength: 1, description: 'Experiment config, relative to the spec file.' },
          steps: { type: ['integer', 'null'], minimum: 1, default: null, description: 'Optimizee steps per run (null: the config\'s evaluation.steps).' },
          tasks: { type: ['integer', 'null'], minimum: 1, default: null, description: 'Held-out tasks (null: the spec\'s tasks).' },
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
  resolved: { checkpoint: { dir: string; config: string | null } | null; results: string; out: string | null; configs: Record<string, string> };
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
  return {
    ...spec,
    file,
    path: abs,
    baseDir,
    resolved: {
      checkpoint: spec.checkpoint ? { dir: at(spec.checkpoint.dir), config: spec.checkpoint.config === null ? null : at(spec.checkpoint.config) } : null,
      results: at(spec.results),
      out: spec.out === null ? null : at(spec.out),
      configs: Object.fromEntries(spec.evaluations.map((e) => [e.name, at(e.config)])),
    },
  };
}
