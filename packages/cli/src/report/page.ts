import { comparisonsOf, comparisonSentence, comparisonTable, RANK_MEASURE, resultsLegend, resultsTable, type ComponentConfig, type EvaluationResults, type OptimizerResult, type PairedComparison } from '@l2l/core';
import { formatDuration } from '../progress';
import type { ReportEvaluation } from './spec';

/** The git state of the checkout a report ran from. */
export interface GitState {
  /** `git rev-parse HEAD`; null outside a git checkout. */
  commit: string | null;
  /** Paths `git status --porcelain` lists (tracked changes and untracked files); null outside a checkout. */
  changed: string[] | null;
}

/** What `l2l report` stores beside each evaluation's results.json, so a later `--collect` can show it. */
export interface EvaluationRunInfo {
  name: string;
  /** Config path as the spec gives it. */
  config: string;
  steps: number;
  tasks: number;
  /**
   * Snapshot directory of the learned optimizer, relative to the spec file, when there is exactly one (null:
   * baselines only, or several: see `checkpoints`).
   */
  checkpoint: string | null;
  /** Snapshot directories of every learned optimizer, in spec order (absent in runs from before several were possible). */
  checkpoints?: string[];
  /** Each learned optimizer's run, which may come from an earlier report (absent in older runs). */
  learned?: LearnedRunInfo[];
  backend: string;
  startedAt: string;
  /** Wall time of the whole evaluation (learned optimizer and baselines), and of the baselines' learning-rate tuning within it. */
  seconds: number;
  tuningSeconds: number;
  /** Wall time of the learned optimizers' runs, summed (null: none). */
  learnedSeconds: number | null;
  /** The baselines' runs, which may come from an earlier report (they do not depend on the checkpoint). */
  baselines: { reused: boolean; startedAt: string; seconds: number; commit: string | null };
  /** 1-minute load average before and after (shared machines run slower). */
  loadBefore: number;
  loadAfter: number;
  git: GitState;
  command: string;
}

/** One learned optimizer's run in an evaluation (`<results>/<evaluation>/learned-<name>.json` keeps it for reuse). */
export interface LearnedRunInfo {
  /** The checkpoint's label (the results name the optimizer so). */
  name: string;
  /** Snapshot directory, relative to the spec file. */
  snapshot: string;
  /** Whether it was taken from an earlier report (same snapshot content, optimizee, seed, steps, tasks and backend). */
  reused: boolean;
  startedAt: string;
  seconds: number;
  commit: string | null;
}

/** The meta-training behind a checkpoint, as its run directory records it. */
export interface TrainingSummary {
  /** The checkpoint's label. */
  name: string;
  /** Run directory and config, relative to where the command ran. */
  dir: string;
  config: string | null;
  /** The snapshot the evaluations use (`best`, `latest`). */
  snapshot: string;
  metaOptimizer: ComponentConfig | null;
  optimizee: ComponentConfig | null;
  training: Record<string, unknown> | null;
  epochs: number;
  bestEpoch: number | null;
  bestValidation: number | null;
  skipped: number;
  /** Seconds: measured around `l2l train` when this report trained it, else the sum of log.csv's per-epoch times. */
  seconds: number;
  secondsSource: 'measured' | 'log';
  /**
   * Wall clock of the last `l2l train` session, validation included: from experiment.json's write (at its start) to
   * log.csv's last write (after its last epoch); null when the files are missing.
   */
  wallSeconds: number | null;
  /** Plot of the per-epoch meta-loss and validation loss (file name in the page's directory), if drawn. */
  plot: string | null;
  /** How steady meta-training was, from log.csv (null: no log). */
  stability?: TrainingStability | null;
  /** Whether this report trained it (else an earlier `l2l train` or report did). */
  trainedNow: boolean;
}

/** The stability of a meta-training, from its per-epoch log. */
export interface TrainingStability {
  /** Coefficient of variation (std / |mean|) of the epochs' mean meta-loss over the last half of the epochs; null under 2 epochs. */
  metaLossCv: number | null;
  /** Validations whose loss was higher than the validation before, of `validations`. */
  validationRises: number;
  validations: number;
  /** The last validation loss over the best one (1: it ended at its best); null without validations. */
  lastOverBest: number | null;
}

/** Stability of a meta-training from its log rows (epoch order): meta-loss and validation loss per epoch, null where not measured. */
export function trainingStability(rows: Array<{ metaLoss: number | null; validationLoss: number | null }>): TrainingStability {
  const losses = rows.map((r) => r.metaLoss).filter((x): x is number => x !== null && Number.isFinite(x));
  const tail = losses.slice(Math.floor(losses.length / 2));
  let metaLossCv: number | null = null;
  if (tail.length >= 2) {
    const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
    const sd = Math.sqrt(tail.reduce((a, b) => a + (b - mean) ** 2, 0) / (tail.length - 1));
    metaLossCv = sd / Math.abs(mean);
  }
  const validations = rows.map((r) => r.validationLoss).filter((x): x is number => x !== null && Number.isFinite(x));
  const validationRises = validations.filter((v, i) => i > 0 && v > validations[i - 1]!).length;
  const best = validations.length ? Math.min(...validations) : null;
  return { metaLossCv, validationRises, validations: validations.length, lastOverBest: best === null ? null : validations[validations.length - 1]! / best };
}

/** Meta-training side by side: time and stability of each checkpoint's run. */
function trainingTable(training: TrainingSummary[]): string[] {
  const rows = training.map((t) => {
    const s = t.stability;
    const estimator = ((t.training?.estimator as { type?: string } | undefined)?.type ?? 'tbptt');
    return `| ${t.name} | ${estimator} | ${t.epochs} | ${formatDuration(t.seconds)} | ${s?.metaLossCv == null ? '—' : fmt(s.metaLossCv)} | ${s ? `${s.validationRises}/${Math.max(0, s.validations - 1)}` : '—'} | ${s?.lastOverBest == null ? '—' : fmt(s.lastOverBest)} |`;
  });
  return [
    '| checkpoint | estimator | epochs | meta-training time | meta-loss CV, last half of epochs | validations that rose | last / best validation |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

export interface ReportEvaluationPage {
  entry: ReportEvaluation;
  /** The config's path as the page shows it (relative to where the command ran). */
  config: string;
  run: EvaluationRunInfo;
  results: EvaluationResults;
  /** Loss-curve plot, a file name in the page's directory. */
  plot: string;
  /** Whether this report ran it (false: collected from an earlier run). */
  ranNow: boolean;
}

export interface ReportPageInput {
  title: string;
  description: string | null;
  /** The spec's paragraph under the timing table. */
  timingNote?: string | null;
  /** The command that made the page, as typed (`l2l report experiments/report-mnist.json`). */
  command: string;
  git: GitState;
  /** ISO date-time the page was generated. */
  date: string;
  /** Backend line of the process that generated the page (`backend: wasm (...)`). */
  backend: string;
  machine: { cpus: number; model: string; loadAverage: number };
  /** The meta-training of each checkpoint, in spec order (empty: baselines only). */
  training: TrainingSummary[];
  evaluations: ReportEvaluationPage[];
  /** Wall time of this `l2l report` run. */
  seconds: number;
}

export const fmt = (x: number): string =>
  Number.isFinite(x) ? (Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toPrecision(4)) : String(x);

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function list(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** How a learned optimizer compares with the tuned baselines in one evaluation, paired per task on the ranking measure. */
export interface Comparison {
  learned: OptimizerResult | null;
  /** Its paired comparison with each baseline (empty when the results hold no per-task values). */
  paired: PairedComparison[];
  /** Baselines it beats (the 95 % interval of the difference excludes zero, in its favour). */
  beats: OptimizerResult[];
  /** Baselines it ties with (the interval includes zero). */
  ties: OptimizerResult[];
  /** Baselines it loses to (the interval excludes zero, against it). */
  losesTo: OptimizerResult[];
  /** The baseline with the lowest mean of the ranking measure. */
  bestBaseline: OptimizerResult | null;
  /** True when it beats every baseline; null without a learned optimizer or without per-task values. */
  wins: boolean | null;
}

const learnedOf = (results: EvaluationResults) => results.optimizers.filter((o) => o.kind === 'learned');
/** The ranking measure's mean (results from before it existed fall back to the final minibatch loss). */
const rankMean = (o: OptimizerResult) => {
  const m = (o.finalMean ?? o.final).mean;
  return Number.isFinite(m) ? m : Infinity;
};
const accuracy = (o: OptimizerResult) => o.metrics?.testAccuracy?.mean;

/** Compares `learned` (default: the results' first learned optimizer) with the baselines. */
export function compare(results: EvaluationResults, learned: OptimizerResult | null = learnedOf(results)[0] ?? null): Comparison {
  const baselines = results.optimizers.filter((o) => o.kind !== 'learned');
  const bestBaseline = baselines.length ? baselines.reduce((a, b) => (rankMean(b) < rankMean(a) ? b : a)) : null;
  const none = { paired: [], beats: [], ties: [], losesTo: [] };
  if (!learned) return { learned, ...none, bestBaseline, wins: null };
  const paired = comparisonsOf(results).filter((c) => c.measure === RANK_MEASURE && c.learned === learned.name);
  const verdict = (b: OptimizerResult) => paired.find((c) => c.baseline === b.name)?.verdict;
  // Diverging on every task loses, whatever an empty comparison says.
  const dead = learned.diverged === learned.tasks;
  const beats = dead ? [] : baselines.filter((b) => verdict(b) === 'wins');
  const ties = dead ? [] : baselines.filter((b) => verdict(b) === 'tie');
  const losesTo = dead ? baselines : baselines.filter((b) => verdict(b) === 'loses');
  const wins = dead && baselines.length ? false : paired.length === 0 ? null : beats.length === baselines.length;
  return { learned, paired, beats, ties, losesTo, bestBaseline, wins };
}

/** "wins against adam, sgd; ties with nag; loses to —" for a summary cell. */
function verdictCell(c: Comparison): string {
  if (c.learned && c.learned.diverged === c.learned.tasks) return 'diverged on every task';
  if (c.wins === null) return c.learned ? 'no per-task results (old protocol)' : '—';
  const parts = [
    c.beats.length ? `wins against ${list(c.beats.map((b) => b.kind))}` : '',
    c.ties.length ? `ties with ${list(c.ties.map((b) => b.kind))}` : '',
    c.losesTo.length ? `loses to ${list(c.losesTo.map((b) => b.kind))}` : '',
  ].filter(Boolean);
  return parts.join(', ');
}

/**
 * The verdict sentences of one learned optimizer, each from a paired per-task comparison with a tuned
 * baseline: on the ranking measure, then on the test metrics. "wins"/"loses" only when the 95 % interval
 * excludes zero, "ties" otherwise. `who` names it; null says "the learned optimizer" (the only one).
 */
function learnedVerdict(results: EvaluationResults, learned: OptimizerResult, who: string | null): string[] {
  const Who = who ?? 'The learned optimizer';
  const baselines = results.optimizers.filter((o) => o.kind !== 'learned');
  if (learned.diverged === learned.tasks) return [`${Who} diverged on all ${learned.tasks} tasks: it loses to every baseline.`];
  if (!baselines.length) return [];
  const cs = comparisonsOf(results).filter((c) => c.learned === learned.name && [RANK_MEASURE, 'metrics.testLoss', 'metrics.testAccuracy'].includes(c.measure));
  if (!cs.length) return [`${Who}: these results hold no per-task values (made before paired comparisons), so no verdict is given; run the evaluation again.`];
  const kindOf = new Map(baselines.map((b) => [b.name, b.kind]));
  return cs.map((c) => comparisonSentence({ ...c, learned: Who, baseline: `tuned ${kindOf.get(c.baseline) ?? c.baseline}${lrOf(results, c.baseline)}` }, results.steps));
}

function lrOf(results: EvaluationResults, name: string): string {
  const o = results.optimizers.find((b) => b.name === name);
  return o?.learningRate === undefined ? '' : ` (learning rate ${fmt(o.learningRate)})`;
}

/**
 * Plain-words verdicts of one evaluation, every number taken from the results: each learned optimizer against
 * each tuned baseline, paired per task with a 95 % interval, divergences, and tuned learning rates at the edge
 * of their grid.
 */
export function verdictSentences(results: EvaluationResults): string[] {
  const out: string[] = [];
  const learned = learnedOf(results);
  const several = learned.length > 1;
  if (!learned.length) out.push('No learned optimizer was evaluated.');
  for (const l of learned) out.push(...learnedVerdict(results, l, several ? l.name : null));
  for (const o of results.optimizers) {
    if (o.diverged > 0 && o.diverged < o.tasks) {
      const who = o.kind !== 'learned' ? o.kind : several ? o.name : 'the learned optimizer';
      out.push(`${o.diverged} of ${o.tasks} runs of ${who} diverged (non-finite loss) and are left out of its mean and of its paired comparisons.`);
    } else if (o.diverged === o.tasks && o.kind !== 'learned') {
      out.push(`${o.kind} diverged on all ${o.tasks} tasks.`);
    }
  }
  for (const { baseline, result } of results.tuning) {
    if (result.atEdge) {
      out.push(
        `The tuned learning rate of ${baseline.type} (${fmt(result.best)}) is the ${result.atEdge === 'high' ? 'largest' : 'smallest'} in its grid: ` +
          `a ${result.atEdge === 'high' ? 'larger' : 'smaller'} one might do better, so this comparison may flatter the learned optimizer${several ? 's' : ''}.`,
      );
    }
  }
  return out;
}

function provenance(git: GitState): string {
  if (git.commit === null) return 'a directory outside any git checkout (no commit recorded)';
  const changed = git.changed ?? [];
  if (changed.length === 0) return `commit \`${git.commit}\`, clean working tree`;
  const shown = changed.slice(0, 8).map((p) => `\`${p}\``).join(', ');
  return `commit \`${git.commit}\`, working tree with ${changed.length} uncommitted change${changed.length === 1 ? '' : 's'} (${shown}${changed.length > 8 ? ', …' : ''})`;
}

function optionsLine(c: ComponentConfig | null): string {
  if (!c) return '—';
  return `\`${c.type}\` ${c.options ? `\`${JSON.stringify(c.options)}\`` : ''}`.trim();
}

const RANK_HEAD = 'final loss (mean of the last 10 % of steps)';
const pmOf = (o: OptimizerResult) => {
  const st = o.finalMean ?? o.final;
  return `${fmt(st.mean)} ± ${fmt(st.std)}`;
};

function summaryTable(evaluations: ReportEvaluationPage[]): string[] {
  const head = ['evaluation', 'steps', 'tasks', `learned: ${RANK_HEAD}`, `best tuned baseline: ${RANK_HEAD}`, 'learned: test accuracy', 'best baseline test accuracy', 'learned vs each tuned baseline (paired, 95 % CI)'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = evaluations.map(({ entry, results }) => {
    const c = compare(results);
    const bestAcc = results.optimizers.filter((o) => o.kind !== 'learned' && accuracy(o) !== undefined).reduce<OptimizerResult | null>((a, b) => (a === null || accuracy(b)! > accuracy(a)! ? b : a), null);
    const learnedAcc = c.learned ? accuracy(c.learned) : undefined;
    return [
      `[${entry.title}](#${anchor(entry.title)})`,
      String(results.steps),
      String(results.tasks),
      c.learned ? pmOf(c.learned) : '—',
      c.bestBaseline ? `${pmOf(c.bestBaseline)} (${c.bestBaseline.kind})` : '—',
      learnedAcc === undefined ? '—' : pct(learnedAcc),
      bestAcc ? `${pct(accuracy(bestAcc)!)} (${bestAcc.kind})` : '—',
      verdictCell(c),
    ];
  });
  return [line(head), line(head.map(() => '---')), ...rows.map(line)];
}

/**
 * The summary with several learned optimizers: per evaluation each one's mean final loss (a column each), the
 * best tuned baseline's, the best test accuracies, and each learned optimizer's paired verdicts against the baselines.
 */
function summaryTableSeveral(evaluations: ReportEvaluationPage[], names: string[]): string[] {
  const hasAccuracy = evaluations.some((e) => e.results.optimizers.some((o) => accuracy(o) !== undefined));
  const head = [
    'evaluation',
    'steps',
    'tasks',
    ...names.map((n) => `${n}: ${RANK_HEAD}`),
    `best tuned baseline: ${RANK_HEAD}`,
    ...(hasAccuracy ? ['best learned: test accuracy', 'best baseline: test accuracy'] : []),
    'learned vs each tuned baseline (paired, 95 % CI)',
  ];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const bestAccuracy = (os: OptimizerResult[], label: (o: OptimizerResult) => string) => {
    const best = os.filter((o) => accuracy(o) !== undefined).reduce<OptimizerResult | null>((a, b) => (a === null || accuracy(b)! > accuracy(a)! ? b : a), null);
    return best ? `${pct(accuracy(best)!)} (${label(best)})` : '—';
  };
  const rows = evaluations.map(({ entry, results }) => {
    const learned = learnedOf(results);
    const baselines = results.optimizers.filter((o) => o.kind !== 'learned');
    const { bestBaseline } = compare(results, null);
    return [
      `[${entry.title}](#${anchor(entry.title)})`,
      String(results.steps),
      String(results.tasks),
      ...names.map((n) => {
        const l = learned.find((o) => o.name === n);
        return !l ? '—' : l.diverged === l.tasks ? 'diverged' : fmt(rankMean(l));
      }),
      bestBaseline ? `${fmt(rankMean(bestBaseline))} (${bestBaseline.kind})` : '—',
      ...(hasAccuracy ? [bestAccuracy(learned, (o) => o.name), bestAccuracy(baselines, (o) => o.kind)] : []),
      learned.map((l) => `${l.name}: ${verdictCell(compare(results, l))}`).join('<br>'),
    ];
  });
  return [line(head), line(head.map(() => '---')), ...rows.map(line)];
}

/** "beats every tuned baseline in k of n evaluations; elsewhere …" for one learned optimizer (null: the only one). */
function winsSentence(evaluations: ReportEvaluationPage[], name: string | null): string | null {
  const runs = evaluations.flatMap((e) => {
    const l = name === null ? learnedOf(e.results)[0] : learnedOf(e.results).find((o) => o.name === name);
    if (!l) return [];
    const c = compare(e.results, l);
    return c.wins === null ? [] : [{ e, c }];
  });
  if (!runs.length) return null;
  const rest = runs.filter((r) => !r.c.wins);
  const Who = name ?? 'The learned optimizer';
  return (
    `${Who} beats every tuned baseline on ${RANK_HEAD} (every paired 95 % interval excludes zero in its favour) in ${runs.length - rest.length} of ${runs.length} evaluations` +
    (rest.length ? `; elsewhere: ${rest.map((r) => `${r.e.entry.title}: ${verdictCell(r.c)}`).join('; ')}.` : '.')
  );
}

/**
 * Under the several-optimizer summary: for each learned optimizer, in how many evaluations it beats every tuned
 * baseline (paired) and what it does elsewhere; then which learned optimizer has the lowest mean in each evaluation.
 */
function summarySentencesSeveral(evaluations: ReportEvaluationPage[], names: string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    const s = winsSentence(evaluations, n);
    if (s) out.push(s);
  }
  const lowest = new Map<string, string[]>();
  for (const e of evaluations) {
    const finite = learnedOf(e.results).filter((o) => Number.isFinite(rankMean(o)));
    if (!finite.length) continue;
    const best = finite.reduce((a, b) => (rankMean(b) < rankMean(a) ? b : a));
    lowest.set(best.name, [...(lowest.get(best.name) ?? []), e.entry.title]);
  }
  const order = [...names, ...[...lowest.keys()].filter((n) => !names.includes(n))];
  const parts = order.filter((n) => lowest.has(n)).map((n) => `${n} in ${list(lowest.get(n)!)}`);
  if (parts.length) out.push(`Lowest mean ${RANK_HEAD} among the learned optimizers (means only, not a paired test between them): ${parts.join('; ')}.`);
  return out;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .trim()
    .replace(/\s/g, '-');
}

function timingTable(input: ReportPageInput): string[] {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const head = ['part', 'time', 'of which tuning', 'backend', 'load average (before → after)', 'run'];
  const rows: string[][] = [];
  const several = learnedNames(input).length > 1;
  for (const t of input.training) {
    rows.push([
      `meta-training${several ? ` of ${t.name}` : ''} (\`${t.dir}\`, ${t.epochs} epochs)`,
      t.secondsSource === 'log'
        ? `${formatDuration(t.seconds)} of epochs (log.csv; validation not included)` +
          (t.wallSeconds === null ? '' : `; ${formatDuration(t.wallSeconds)} wall clock of the last \`l2l train\` session (file times; validation included)`)
        : formatDuration(t.seconds),
      '—',
      '—',
      '—',
      t.trainedNow ? 'this run' : t.secondsSource === 'measured' ? 'an earlier `l2l report --train`' : 'an earlier `l2l train`',
    ]);
  }
  for (const e of input.evaluations) {
    const r = e.run;
    const sameCommit = r.git.commit === input.git.commit;
    const b = r.baselines;
    const from = (x: { startedAt: string; commit: string | null }) => `${x.startedAt}${x.commit === r.git.commit ? '' : ` (commit \`${x.commit ?? 'none'}\`)`}`;
    const reusedLearned = (r.learned ?? []).filter((l) => l.reused);
    const reused =
      (b.reused ? `; baselines reused from ${from(b)}` : '') +
      (reusedLearned.length === 0
        ? ''
        : several
          ? `; learned runs reused: ${reusedLearned.map((l) => `${l.name} from ${from(l)}`).join(', ')}`
          : `; learned optimizer reused from ${from(reusedLearned[0]!)}`);
    rows.push([
      `evaluation: ${e.entry.title}`,
      formatDuration(r.seconds),
      formatDuration(r.tuningSeconds),
      r.backend,
      `${r.loadBefore.toFixed(2)} → ${r.loadAfter.toFixed(2)}`,
      (e.ranNow ? 'this run' : `collected (${r.startedAt}${sameCommit ? '' : `, commit \`${r.git.commit ?? 'none'}\``})`) + reused,
    ]);
  }
  return [line(head), line(head.map(() => '---')), ...rows.map(line)];
}

/** The learned optimizers' names in page order: the checkpoints', then any other the results hold. */
function learnedNames(input: ReportPageInput): string[] {
  const names = input.training.map((t) => t.name);
  for (const e of input.evaluations) for (const o of learnedOf(e.results)) if (!names.includes(o.name)) names.push(o.name);
  return names;
}

/** What the page says about one checkpoint's meta-training. */
function trainingSection(t: TrainingSummary, plotAlt: string): string[] {
  const out = [
    `Checkpoint \`${t.dir}\`${t.config ? `, trained by \`l2l train ${t.config} --out ${t.dir}\`` : ''}; the evaluations use its \`${t.snapshot}/\` snapshot` +
      (t.bestEpoch !== null ? ` (best validation loss ${fmt(t.bestValidation ?? NaN)} at epoch ${t.bestEpoch} of ${t.epochs})` : ` (${t.epochs} epochs)`) +
      `, and it is not retrained for any of them.`,
    '',
    `- learned optimizer: ${optionsLine(t.metaOptimizer)}`,
    `- trained on: ${optionsLine(t.optimizee)}`,
  ];
  if (t.training) out.push(`- training: \`${JSON.stringify(t.training)}\``);
  out.push(
    `- time: ${formatDuration(t.seconds)}${
      t.secondsSource === 'log'
        ? ' (sum of the per-epoch times in log.csv; validation runs not included)' +
          (t.wallSeconds === null ? '' : `, ${formatDuration(t.wallSeconds)} wall clock from the start of the last \`l2l train\` session to its last epoch (file times of experiment.json and log.csv; validation included)`)
        : ' (measured)'
    }; ${t.skipped} episode${t.skipped === 1 ? '' : 's'} skipped for non-finite losses`,
    '',
  );
  if (t.plot) out.push(`![${plotAlt}](${t.plot})`, '');
  return out;
}

/** The whole results page (markdown); every number comes from `input`. */
export function renderReportPage(input: ReportPageInput): string {
  const out: string[] = [`# ${input.title}`, ''];
  if (input.description) out.push(input.description, '');
  out.push(
    `Generated by \`${input.command}\` on ${input.date} from ${provenance(input.git)}; ${input.backend}. ` +
      `Machine: ${input.machine.cpus} CPU cores (${input.machine.model}), 1-minute load average ${input.machine.loadAverage.toFixed(2)} when the report started. ` +
      `The whole report took ${formatDuration(input.seconds)}.`,
    '',
  );
  const evals = input.evaluations;
  const names = learnedNames(input);
  const several = names.length > 1;
  if (evals.length && several) {
    out.push('## Summary', '', ...summaryTableSeveral(evals, names), '');
    out.push(...summarySentencesSeveral(evals, names).flatMap((line) => [line, '']));
  } else if (evals.length) {
    out.push('## Summary', '', ...summaryTable(evals), '');
    const sentence = winsSentence(evals, null);
    if (sentence) out.push(sentence, '');
  }
  if (input.training.length) {
    out.push('## Meta-training', '');
    for (const t of input.training) {
      if (several) out.push(`### ${t.name}`, '');
      out.push(...trainingSection(t, several ? `${t.name}: meta-training curves` : 'meta-training curves'));
    }
    if (several) {
      out.push(
        '### Meta-training side by side',
        '',
        'Stability: the coefficient of variation of the per-epoch meta-loss over the second half of the epochs (lower: steadier), ' +
          'how many validations rose over the one before, and the last validation loss over the best (1: it ended at its best).',
        '',
        ...trainingTable(input.training),
        '',
      );
    }
  }
  for (const e of evals) {
    const r = e.results;
    out.push(`## ${e.entry.title}`, '');
    if (e.entry.note) out.push(e.entry.note, '');
    out.push(
      `Config \`${e.config}\` (optimizee ${optionsLine(r.optimizee)}), ${r.tasks} held-out (test-split) tasks, ${r.steps} steps, seed ${r.seed}, backend ${e.run.backend}. ` +
        resultsLegend(r),
      '',
    );
    out.push(resultsTable(r).trimEnd(), '');
    const compared = comparisonTable(r);
    if (compared) out.push(compared.trimEnd(), '');
    if (r.tuning.length) {
      const t0 = r.tuning[0]!.result.grid.map((g) => g.learningRate);
      out.push(`Baseline learning rates were tuned on training tasks over the grid ${t0.map(fmt).join(', ')}.`, '');
    }
    for (const s of verdictSentences(r)) out.push(`- ${s}`);
    out.push('', `![${e.entry.title}: loss curves](${e.plot})`, '');
  }
  out.push('## Timing', '', ...timingTable(input), '');
  out.push(
    `Times are wall-clock on this machine (${input.machine.cpus} cores; each part runs on one): a load average above 1 before a part started ` +
      'means other jobs were running, and that part\'s time includes the slowdown of sharing the CPU.',
    '',
  );
  if (input.timingNote) out.push(input.timingNote, '');
  return out.join('\n').trimEnd() + '\n';
}
