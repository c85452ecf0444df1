import type { OptimizerResult } from '../engine/evaluate';
import { comparisonSentence, compareOptimizers, meanConfidenceInterval, measureLabel, pairedComparison } from './compare';

describe('meanConfidenceInterval', () => {
  it('matches a hand-computed Student-t interval', () => {
    // xs = 1..5: mean 3, sample sd √2.5 = 1.58114, se = 0.707107; t(0.975, 4) = 2.776445 (tables):
    // half-width 1.963243, interval [1.036757, 4.963243].
    const ci = meanConfidenceInterval([1, 2, 3, 4, 5]);
    expect(ci.mean).toBe(3);
    expect(ci.sd).toBeCloseTo(1.581139, 6);
    expect(ci.low).toBeCloseTo(1.036757, 5);
    expect(ci.high).toBeCloseTo(4.963243, 5);
    // 90 %: t(0.95, 4) = 2.131847, half-width 1.507443.
    const ci90 = meanConfidenceInterval([1, 2, 3, 4, 5], 0.9);
    expect(ci90.high - ci90.mean).toBeCloseTo(1.507443, 5);
  });

  it('is unbounded below two values and rejects a bad confidence', () => {
    expect(meanConfidenceInterval([2])).toMatchObject({ mean: 2, low: -Infinity, high: Infinity });
    expect(() => meanConfidenceInterval([1, 2], 1)).toThrow(/confidence must be in \(0, 1\)/);
  });
});

describe('pairedComparison', () => {
  it('uses per-task differences, counts wins, and says "wins" only when the interval excludes zero', () => {
    // Differences −1, −2, −3, −4, −5: the mirror of the hand example, interval [−4.963, −1.037].
    const c = pairedComparison([1, 1, 1, 1, 1], [2, 3, 4, 5, 6]);
    expect(c).toMatchObject({ tasks: 5, leftOut: 0, won: 5, verdict: 'wins', meanDifference: -3 });
    expect(c.ci95[0]).toBeCloseTo(-4.963243, 5);
    expect(c.ci95[1]).toBeCloseTo(-1.036757, 5);
    expect(pairedComparison([2, 3, 4, 5, 6], [1, 1, 1, 1, 1]).verdict).toBe('loses');
    // Accuracy: higher is better, so the same numbers are a win.
    expect(pairedComparison([2, 3, 4, 5, 6], [1, 1, 1, 1, 1], true)).toMatchObject({ verdict: 'wins', won: 5 });
  });

  it('is a tie when the interval includes zero, even when one side is ahead on most tasks', () => {
    // Differences −1, −1, −1, 4: mean 0.25, learned lower on 3 of 4 tasks, but the interval spans zero.
    const c = pairedComparison([0, 0, 0, 4], [1, 1, 1, 0]);
    expect(c.won).toBe(3);
    expect(c.ci95[0]).toBeLessThan(0);
    expect(c.ci95[1]).toBeGreaterThan(0);
    expect(c.verdict).toBe('tie');
  });

  it('leaves out tasks where either run diverged, and rejects unpaired series', () => {
    const c = pairedComparison([1, null, 1, 1], [2, 2, null, 3]);
    expect(c).toMatchObject({ tasks: 2, leftOut: 2, won: 2, meanDifference: -1.5 });
    expect(() => pairedComparison([1], [1, 2])).toThrow(/same tasks/);
  });
});

const result = (name: string, kind: string, finalMean: number[], testAccuracy?: number[]): OptimizerResult => ({
  name,
  kind,
  steps: 100,
  tasks: finalMean.length,
  curve: { mean: [], std: [] },
  final: { mean: 0, std: 0 },
  finalMean: { mean: 0, std: 0 },
  diverged: 0,
  perTask: { final: finalMean, finalMean, ...(testAccuracy ? { metrics: { testAccuracy } } : {}) },
  seconds: 0,
});

describe('compareOptimizers and sentences', () => {
  it('compares every learned optimizer with every baseline on the shared measures, ranking measure first', () => {
    const cs = compareOptimizers([
      result('lstm', 'learned', [1, 1, 1, 1, 1], [0.9, 0.9, 0.9, 0.9, 0.9]),
      result('adam', 'adam', [2, 3, 4, 5, 6], [0.8, 0.7, 0.9, 0.6, 0.5]),
      result('sgd', 'sgd', [0, 0, 0, 4, 1]),
    ]);
    expect(cs.map((c) => [c.measure, c.learned, c.baseline, c.verdict])).toEqual([
      ['finalMean', 'lstm', 'adam', 'wins'],
      ['finalMean', 'lstm', 'sgd', 'tie'],
      ['final', 'lstm', 'adam', 'wins'],
      ['final', 'lstm', 'sgd', 'tie'],
    ]); // testAccuracy is missing for sgd, so it is not compared
  });

  it('writes "ties" with the interval when it includes zero, "wins"/"loses" only when it excludes zero', () => {
    const base = { learned: 'lstm', baseline: 'nag', measure: 'finalMean' as const };
    const tie = comparisonSentence({ ...base, ...pairedComparison([0, 0, 0, 4], [1, 1, 1, 0]) }, 200);
    expect(tie).toBe(`lstm ties with nag on final loss, mean of steps 181–200: mean difference 0.250, 95 % CI [${(0.25 - 3.182446 * 2.5 / 2).toPrecision(3)}, ${(0.25 + 3.182446 * 2.5 / 2).toPrecision(3)}] includes zero, so neither is better on these tasks; lower on 3 of 4 tasks.`);
    expect(tie).not.toMatch(/wins|loses/);
    const win = comparisonSentence({ ...base, ...pairedComparison([1, 1, 1, 1, 1], [2, 3, 4, 5, 6]) }, 100);
    expect(win).toBe('lstm wins against nag on final loss, mean of steps 91–100: mean difference -3.00, 95 % CI [-4.96, -1.04], which excludes zero; lower on 5 of 5 tasks.');
    const lose = comparisonSentence({ ...base, measure: 'metrics.testAccuracy', ...pairedComparison([0.1, 0.2, null], [0.5, 0.6, 0.7], true) }, 100);
    expect(lose).toMatch(/^lstm loses to nag on testAccuracy: .* higher on 0 of 2 tasks \(1 task left out: a run diverged or lacks the value\)\.$/);
    expect(measureLabel('final', 100)).toBe('minibatch loss at step 100');
    expect(measureLabel('finalMean', 5)).toBe('final loss (step 5)');
  });
});
