/**
 * Paired comparisons of a learned optimizer with a baseline over the same held-out tasks: the per-task
 * difference, its Student-t confidence interval, how many tasks each won, and a verdict that says "wins" or
 * "loses" only when the interval excludes zero.
 */
import { jStat } from 'jstat';
import { lastSteps, type OptimizerResult, type PerTask } from '../engine/evaluate';

/** What is compared: a field of `OptimizerResult.perTask`, or `metrics.<name>`. */
export type Measure = 'finalMean' | 'final' | 'fullLoss' | `metrics.${string}`;

/** The measure tables rank by and verdicts are first given for: the mean loss over the last 10 % of steps. */
export const RANK_MEASURE: Measure = 'finalMean';

export type Verdict = 'wins' | 'tie' | 'loses';

export interface PairedComparison {
  learned: string;
  baseline: string;
  measure: Measure;
  /** True for accuracies: a larger value is better. */
  higherIsBetter: boolean;
  /** Tasks with a value for both (the pairs the statistics use). */
  tasks: number;
  /** Tasks left out because either run diverged or lacks the value. */
  leftOut: number;
  /** Mean over tasks of (learned − baseline). */
  meanDifference: number;
  /** 95 % Student-t confidence interval of the mean difference ([−∞, ∞] with fewer than 2 tasks). */
  ci95: [number, number];
  /** Tasks on which the learned optimizer did better (strictly). */
  won: number;
  /** "wins"/"loses" only when the interval excludes zero. */
  verdict: Verdict;
}

export interface ConfidenceInterval {
  mean: number;
  low: number;
  high: number;
  /** Sample standard deviation (n − 1). */
  sd: number;
  n: number;
}

/**
 * Student-t confidence interval of the mean of `xs`: mean ± t_{(1+c)/2, n−1} · sd / √n, the t quantile from
 * jStat (a well-kept statistics library, not hand-rolled). Fewer than two values give an unbounded interval.
 */
export function meanConfidenceInterval(xs: readonly number[], confidence = 0.95): ConfidenceInterval {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  const n = xs.length;
  const mean = n ? xs.reduce((a, b) => a + b, 0) / n : NaN;
  if (n < 2) return { mean, low: -Infinity, high: Infinity, sd: NaN, n };
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = jStat.studentt.inv((1 + confidence) / 2, n - 1) * (sd / Math.sqrt(n));
  return { mean, low: mean - half, high: mean + half, sd, n };
}

/** Compares two per-task series of the same tasks (learned first); `higherIsBetter` for accuracies. */
export function pairedComparison(learned: PerTask, baseline: PerTask, higherIsBetter = false): Omit<PairedComparison, 'learned' | 'baseline' | 'measure'> {
  if (learned.length !== baseline.length) throw new Error(`paired comparison needs the same tasks: ${learned.length} vs ${baseline.length} values`);
  const diffs: number[] = [];
  let won = 0;
  learned.forEach((a, i) => {
    const b = baseline[i];
    if (a === null || b === null || b === undefined) return;
    diffs.push(a - b);
    if (higherIsBetter ? a > b : a < b) won++;
  });
  const ci = meanConfidenceInterval(diffs);
  const better = higherIsBetter ? ci.low > 0 : ci.high < 0;
  const worse = higherIsBetter ? ci.high < 0 : ci.low > 0;
  return {
    higherIsBetter,
    tasks: diffs.length,
    leftOut: learned.length - diffs.length,
    meanDifference: ci.mean,
    ci95: [ci.low, ci.high],
    won,
    verdict: better ? 'wins' : worse ? 'loses' : 'tie',
  };
}

/** The per-task values of a measure, or undefined when the result lacks it. */
export function perTaskValues(result: OptimizerResult, measure: Measure): PerTask | undefined {
  if (measure.startsWith('metrics.')) return result.perTask?.metrics?.[measure.slice('metrics.'.length)];
  return result.perTask?.[measure as 'finalMean' | 'final' | 'fullLoss'];
}

/** The measures a set of results can be compared on: the ranking measure first, then the others they all have. */
export function measuresOf(results: readonly OptimizerResult[]): Measure[] {
  const metricNames = [...new Set(results.flatMap((r) => Object.keys(r.perTask?.metrics ?? {})))].sort();
  const all: Measure[] = [RANK_MEASURE, 'final', 'fullLoss', ...metricNames.map((m): Measure => `metrics.${m}`)];
  return all.filter((m) => results.length > 0 && results.every((r) => perTaskValues(r, m) !== undefined));
}

/** Every learned optimizer against every baseline, on every measure they share (the ranking measure first). */
export function compareOptimizers(results: readonly OptimizerResult[]): PairedComparison[] {
  const learned = results.filter((r) => r.kind === 'learned');
  const baselines = results.filter((r) => r.kind !== 'learned');
  const out: PairedComparison[] = [];
  for (const measure of measuresOf(results)) {
    for (const l of learned) {
      for (const b of baselines) {
        const c = pairedComparison(perTaskValues(l, measure)!, perTaskValues(b, measure)!, /accuracy/i.test(measure));
        out.push({ learned: l.name, baseline: b.name, measure, ...c });
      }
    }
  }
  return out;
}

/** How a measure reads in a sentence or table head, for a run of `steps` steps. */
export function measureLabel(measure: Measure, steps: number): string {
  if (measure === 'finalMean') {
    const { from, to } = lastSteps(steps);
    return from === to ? `final loss (step ${to})` : `final loss, mean of steps ${from}–${to}`;
  }
  if (measure === 'final') return `minibatch loss at step ${steps}`;
  if (measure === 'fullLoss') return `full loss at step ${steps}`;
  return measure.slice('metrics.'.length);
}

const num = (x: number) => (!Number.isFinite(x) ? String(x) : Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(2) : x.toPrecision(3));

/** The interval as `[low, high]`. */
export function formatInterval(c: Pick<PairedComparison, 'ci95'>): string {
  return `[${num(c.ci95[0])}, ${num(c.ci95[1])}]`;
}

/** One generated sentence for a comparison; says "ties" whenever the interval includes zero. */
export function comparisonSentence(c: PairedComparison, steps: number): string {
  const what = measureLabel(c.measure, steps);
  const better = c.higherIsBetter ? 'higher' : 'lower';
  const count = `${better} on ${c.won} of ${c.tasks} tasks`;
  const left = c.leftOut ? ` (${c.leftOut} task${c.leftOut === 1 ? '' : 's'} left out: a run diverged or lacks the value)` : '';
  const diff = `mean difference ${num(c.meanDifference)}, 95 % CI ${formatInterval(c)}`;
  switch (c.verdict) {
    case 'wins':
      return `${c.learned} wins against ${c.baseline} on ${what}: ${diff}, which excludes zero; ${count}${left}.`;
    case 'loses':
      return `${c.learned} loses to ${c.baseline} on ${what}: ${diff}, which excludes zero; ${count}${left}.`;
    default:
      return `${c.learned} ties with ${c.baseline} on ${what}: ${diff} includes zero, so neither is better on these tasks; ${count}${left}.`;
  }
}
