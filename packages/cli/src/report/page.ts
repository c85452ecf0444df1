import { resultsTable, type ComponentConfig, type EvaluationResults, type OptimizerResult } from '@l2l/core';
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
  /** Snapshot directory of the learned optimizer, relative to the spec file (null: baselines only). */
  checkpoint: string | null;
  backend: string;
  startedAt: string;
  /** Wall time of the whole evaluation (learned optimizer and baselines), and of the baselines' learning-rate tuning within it. */
  seconds: number;
  tuningSeconds: number;
  /** Wall time of the learned optimizer's runs (null: none). */
  learnedSeconds: number | null;
  /** The baselines' runs, which may come from an earlier report (they do not depend on the checkpoint). */
  baselines: { reused: boolean; startedAt: string; seconds: number; commit: string | null };
  /** 1-minute load average before and after (shared machines run slower). */
  loadBefore: number;
  loadAfter: number;
  git: GitState;
  command: string;
}

/** The meta-training behind the checkpoint, as its run directory records it. */
export interface TrainingSummary {
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
  /** Whether this report trained it (else an earlier `l2l train` or report did). */
  trainedNow: boolean;
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
  training: TrainingSummary | null;
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

/** How the learned optimizer compares with the baselines in one evaluation. */
export interface Comparison {
  learned: OptimizerResult | null;
  /** Baselines with a lower mean final loss than the learned optimizer's (the ones it loses to). */
  lowerLoss: OptimizerResult[];
  /** Baselines with a higher mean test accuracy than the learned optimizer's. */
  higherAccuracy: OptimizerResult[];
  /** The baseline with the lowest mean final loss. */
  bestBaseline: OptimizerResult | null;
  /** True when the learned optimizer's mean final loss is below every baseline's; null without a learned optimizer. */
  wins: boolean | null;
}

const finalMean = (o: OptimizerResult) => (Number.isFinite(o.final.mean) ? o.final.mean : Infinity);
const accuracy = (o: OptimizerResult) => o.metrics?.testAccuracy?.mean;

export function compare(results: EvaluationResults): Comparison {
  const learned = results.optimizers.find((o) => o.kind === 'learned') ?? null;
  const baselines = results.optimizers.filter((o) => o.kind !== 'learned');
  const bestBaseline = baselines.length ? baselines.reduce((a, b) => (finalMean(b) < finalMean(a) ? b : a)) : null;
  if (!learned) return { learned, lowerLoss: [], higherAccuracy: [], bestBaseline, wins: null };
  const lowerLoss = baselines.filter((b) => finalMean(b) < finalMean(learned));
  const acc = accuracy(learned);
  const higherAccuracy = acc === undefined ? [] : baselines.filter((b) => (accuracy(b) ?? -Infinity) > acc);
  return { learned, lowerLoss, higherAccuracy, bestBaseline, wins: Number.isFinite(learned.final.mean) && lowerLoss.length === 0 };
}

function lr(o: OptimizerResult): string {
  return o.learningRate === undefined ? '' : ` (learning rate ${fmt(o.learningRate)})`;
}

/**
 * Plain-words verdicts of one evaluation, every number taken from the results: where the learned optimizer's
 * mean final loss and test accuracy stand against each tuned baseline's, divergences, and tuned learning rates
 * at the edge of their grid.
 */
export function verdictSentences(results: EvaluationResults): string[] {
  const out: string[] = [];
  const c = compare(results);
  const { learned } = c;
  const baselines = results.optimizers.filter((o) => o.kind !== 'learned');
  if (!learned) {
    out.push('No learned optimizer was evaluated.');
  } else if (learned.diverged === learned.tasks) {
    out.push(`The learned optimizer diverged on all ${learned.tasks} tasks: it loses to every baseline.`);
  } else if (baselines.length) {
    const L = fmt(learned.final.mean);
    if (c.lowerLoss.length === 0) {
      const b = c.bestBaseline!;
      out.push(
        `The learned optimizer's mean final loss (${L}) is below every tuned baseline's; the closest, ${b.kind}${lr(b)}, reaches ${fmt(b.final.mean)}` +
          (Number.isFinite(b.final.mean) ? ` (${fmt(b.final.mean - learned.final.mean)} higher).` : '.'),
      );
    } else {
      const sorted = [...c.lowerLoss].sort((a, b) => a.final.mean - b.final.mean);
      out.push(
        `The learned optimizer loses on final loss: its mean final loss (${L}) is above ${list(sorted.map((b) => `tuned ${b.kind}'s (${fmt(b.final.mean)})`))}` +
          ` (${c.lowerLoss.length} of ${baselines.length} baselines).`,
      );
    }
    const acc = accuracy(learned);
    if (acc !== undefined) {
      if (c.higherAccuracy.length === 0) {
        const withAcc = baselines.filter((b) => accuracy(b) !== undefined);
        const best = withAcc.length ? withAcc.reduce((a, b) => (accuracy(b)! > accuracy(a)! ? b : a)) : null;
        out.push(`Its mean test accuracy (${pct(acc)}) is the highest${best ? `; the best baseline's is ${best.kind}'s ${pct(accuracy(best)!)}` : ''}.`);
      } else {
        const sorted = [...c.higherAccuracy].sort((a, b) => accuracy(b)! - accuracy(a)!);
        out.push(`Its mean test accuracy (${pct(acc)}) is below ${list(sorted.map((b) => `tuned ${b.kind}'s (${pct(accuracy(b)!)})`))}.`);
      }
    }
  }
  for (const o of results.optimizers) {
    if (o.diverged > 0 && o.diverged < o.tasks) {
      out.push(`${o.diverged} of ${o.tasks} runs of ${o.kind === 'learned' ? 'the learned optimizer' : o.kind} diverged (non-finite loss) and are left out of its mean.`);
    } else if (o.diverged === o.tasks && o.kind !== 'learned') {
      out.push(`${o.kind} diverged on all ${o.tasks} tasks.`);
    }
  }
  for (const { baseline, result } of results.tuning) {
    if (result.atEdge) {
      out.push(
        `The tuned learning rate of ${baseline.type} (${fmt(result.best)}) is the ${result.atEdge === 'high' ? 'largest' : 'smallest'} in its grid: ` +
          `a ${result.atEdge === 'high' ? 'larger' : 'smaller'} one might do better, so this comparison may flatter the learned optimizer.`,
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

function summaryTable(evaluations: ReportEvaluationPage[]): string[] {
  const head = ['evaluation', 'steps', 'tasks', 'learned: final loss', 'best tuned baseline: final loss', 'learned: test accuracy', 'best baseline test accuracy', 'learned optimizer'];
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = evaluations.map(({ entry, results }) => {
    const c = compare(results);
    const bestAcc = results.optimizers.filter((o) => o.kind !== 'learned' && accuracy(o) !== undefined).reduce<OptimizerResult | null>((a, b) => (a === null || accuracy(b)! > accuracy(a)! ? b : a), null);
    const learnedAcc = c.learned ? accuracy(c.learned) : undefined;
    const verdict = c.wins === null ? '—' : c.wins ? 'lowest loss' : `loses to ${list(c.lowerLoss.map((b) => b.kind))}`;
    return [
      `[${entry.title}](#${anchor(entry.title)})`,
      String(results.steps),
      String(results.tasks),
      c.learned ? `${fmt(c.learned.final.mean)} ± ${fmt(c.learned.final.std)}` : '—',
      c.bestBaseline ? `${fmt(c.bestBaseline.final.mean)} ± ${fmt(c.bestBaseline.final.std)} (${c.bestBaseline.kind})` : '—',
      learnedAcc === undefined ? '—' : pct(learnedAcc),
      bestAcc ? `${pct(accuracy(bestAcc)!)} (${bestAcc.kind})` : '—',
      verdict,
    ];
  });
  return [line(head), line(head.map(() => '---')), ...rows.map(line)];
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
  const t = input.training;
  if (t) {
    rows.push([
      `meta-training (\`${t.dir}\`, ${t.epochs} epochs)`,
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
    const reused = b.reused ? `; baselines reused from ${b.startedAt}${b.commit === r.git.commit ? '' : ` (commit \`${b.commit ?? 'none'}\`)`}` : '';
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
  if (evals.length) {
    out.push('## Summary', '', ...summaryTable(evals), '');
    const learnedRuns = evals.filter((e) => compare(e.results).wins !== null);
    if (learnedRuns.length) {
      const lost = learnedRuns.filter((e) => !compare(e.results).wins);
      out.push(
        `The learned optimizer has the lowest mean final loss in ${learnedRuns.length - lost.length} of ${learnedRuns.length} evaluations` +
          (lost.length ? `; it loses in ${list(lost.map((e) => e.entry.title))}.` : '.'),
        '',
      );
    }
  }
  const t = input.training;
  if (t) {
    out.push('## Meta-training', '');
    out.push(
      `Checkpoint \`${t.dir}\`${t.config ? `, trained by \`l2l train ${t.config} --out ${t.dir}\`` : ''}; the evaluations use its \`${t.snapshot}/\` snapshot` +
        (t.bestEpoch !== null ? ` (best validation loss ${fmt(t.bestValidation ?? NaN)} at epoch ${t.bestEpoch} of ${t.epochs})` : ` (${t.epochs} epochs)`) +
        `, and it is not retrained for any of them.`,
      '',
      `- learned optimizer: ${optionsLine(t.metaOptimizer)}`,
      `- trained on: ${optionsLine(t.optimizee)}`,
    );
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
    if (t.plot) out.push(`![meta-training curves](${t.plot})`, '');
  }
  for (const e of evals) {
    const r = e.results;
    out.push(`## ${e.entry.title}`, '');
    if (e.entry.note) out.push(e.entry.note, '');
    out.push(
      `Config \`${e.config}\` (optimizee ${optionsLine(r.optimizee)}), ${r.tasks} held-out tasks, ${r.steps} steps, seed ${r.seed}, backend ${e.run.backend}. ` +
        'Final loss: the minibatch loss after the last step' +
        (r.optimizers.some((o) => o.metrics) ? `; ${Object.keys(r.optimizers.find((o) => o.metrics)!.metrics!).join(', ')}: the task's held-out metrics of the final parameters (for mnist-mlp: all test images)` : '') +
        '. Mean ± std over the tasks.',
      '',
    );
    out.push(resultsTable(r).trimEnd(), '');
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
