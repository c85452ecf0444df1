import type { EvaluationResults, OptimizerResult } from '@l2l/core';
import { anchor, compare, renderReportPage, verdictSentences, type ReportPageInput } from './page';

function opt(kind: string, final: number, accuracy?: number, extra: Partial<OptimizerResult> = {}): OptimizerResult {
  return {
    name: kind === 'learned' ? 'lstm' : `${kind}(lr=0.1)`,
    kind,
    learningRate: kind === 'learned' ? undefined : 0.1,
    steps: 2,
    tasks: 4,
    curve: { mean: [2, 1, final], std: [0, 0.1, 0.01] },
    final: { mean: final, std: 0.01 },
    diverged: 0,
    metrics: accuracy === undefined ? undefined : { testAccuracy: { mean: accuracy, std: 0.001 } },
    seconds: 1,
    ...extra,
  };
}

function results(optimizers: OptimizerResult[], atEdge: 'low' | 'high' | null = null): EvaluationResults {
  return {
    experiment: 'x',
    optimizee: { type: 'mnist-mlp', options: { hidden: [20] } },
    steps: 2,
    tasks: 4,
    seed: 0,
    optimizers,
    tuning: optimizers
      .filter((o) => o.kind !== 'learned')
      .map((o) => ({
        baseline: { type: o.kind },
        result: { best: 0.1, grid: [0.01, 0.1, 1].map((learningRate) => ({ learningRate, meanFinalLoss: 1 })), atEdge: o.kind === 'sgd' ? atEdge : null },
      })),
  };
}

describe('verdicts', () => {
  it('says the learned optimizer wins when its mean final loss is below every baseline\'s, with the closest one', () => {
    const r = results([opt('learned', 0.2, 0.95), opt('sgd', 0.5, 0.9), opt('adam', 0.25, 0.93)]);
    expect(compare(r).wins).toBe(true);
    expect(verdictSentences(r)).toEqual([
      "The learned optimizer's mean final loss (0.2000) is below every tuned baseline's; the closest, adam (learning rate 0.1000), reaches 0.2500 (0.05000 higher).",
      "Its mean test accuracy (95.00%) is the highest; the best baseline's is adam's 93.00%.",
    ]);
  });

  it('names every baseline that beats it, lowest loss first, and the ones with better accuracy', () => {
    const r = results([opt('learned', 0.4, 0.9), opt('sgd', 0.5, 0.91), opt('rmsprop', 0.3, 0.92), opt('adam', 0.1, 0.97)]);
    const c = compare(r);
    expect(c.wins).toBe(false);
    expect(c.lowerLoss.map((o) => o.kind)).toEqual(['rmsprop', 'adam']);
    expect(verdictSentences(r)).toEqual([
      "The learned optimizer loses on final loss: its mean final loss (0.4000) is above tuned adam's (0.1000) and tuned rmsprop's (0.3000) (2 of 3 baselines).",
      "Its mean test accuracy (90.00%) is below tuned adam's (97.00%), tuned rmsprop's (92.00%) and tuned sgd's (91.00%).",
    ]);
  });

  it('reports divergence, a learned optimizer that diverged everywhere, and a tuned rate at the grid edge', () => {
    const partly = results([opt('learned', 0.2), opt('sgd', 0.3, undefined, { diverged: 1 }), opt('adam', NaN, undefined, { diverged: 4 })], 'high');
    const s = verdictSentences(partly);
    expect(s[0]).toMatch(/^The learned optimizer's mean final loss \(0\.2000\) is below every tuned baseline's; the closest, sgd/);
    expect(s).toContain('1 of 4 runs of sgd diverged (non-finite loss) and are left out of its mean.');
    expect(s).toContain('adam diverged on all 4 tasks.');
    expect(s).toContain('The tuned learning rate of sgd (0.1000) is the largest in its grid: a larger one might do better, so this comparison may flatter the learned optimizer.');
    const dead = results([opt('learned', NaN, undefined, { diverged: 4 }), opt('sgd', 0.3)]);
    expect(compare(dead).wins).toBe(false);
    expect(verdictSentences(dead)[0]).toBe('The learned optimizer diverged on all 4 tasks: it loses to every baseline.');
    expect(compare(results([opt('sgd', 0.3)])).wins).toBeNull();
  });
});

describe('page', () => {
  const base = (): ReportPageInput => ({
    title: 'Demo report',
    description: 'What it shows.',
    command: 'l2l report spec.json',
    git: { commit: 'abc123', changed: [] },
    date: '2026-01-02T03:04:05Z',
    backend: 'backend: cpu (x)',
    machine: { cpus: 2, model: 'Some CPU', loadAverage: 1.5 },
    training: null,
    evaluations: [
      {
        entry: { name: 'win', title: 'Wins here', note: 'A note.', config: 'a.json', steps: null, tasks: null },
        config: 'experiments/a.json',
        run: {
          name: 'win', config: 'a.json', steps: 2, tasks: 4, checkpoint: 'run/best', backend: 'cpu', startedAt: 'T', seconds: 125, tuningSeconds: 65,
          loadBefore: 0.5, loadAfter: 2.25, git: { commit: 'abc123', changed: [] }, command: 'l2l report spec.json',
          learnedSeconds: 60, baselines: { reused: false, startedAt: 'T', seconds: 65, commit: 'abc123' },
        },
        results: results([opt('learned', 0.2, 0.95), opt('adam', 0.25, 0.93)]),
        plot: 'results-win.svg',
        ranNow: true,
      },
      {
        entry: { name: 'lose', title: 'ReLU (loses)', note: null, config: 'b.json', steps: 200, tasks: null },
        config: 'experiments/b.json',
        run: {
          name: 'lose', config: 'b.json', steps: 2, tasks: 4, checkpoint: 'run/best', backend: 'cpu', startedAt: '2026-01-01T00:00:00.000Z', seconds: 5, tuningSeconds: 1,
          loadBefore: 0, loadAfter: 0, git: { commit: 'old999', changed: [] }, command: 'l2l report spec.json',
          learnedSeconds: 1, baselines: { reused: true, startedAt: '2025-12-31T00:00:00.000Z', seconds: 4, commit: 'old000' },
        },
        results: results([opt('learned', 0.4, 0.9), opt('adam', 0.1, 0.97)]),
        plot: 'results-lose.svg',
        ranNow: false,
      },
    ],
    seconds: 3725,
  });

  it('states the command, commit, backend, date, machine and total time', () => {
    const page = renderReportPage(base());
    expect(page).toMatch(/^# Demo report\n\nWhat it shows\.\n\n/);
    expect(page).toContain('Generated by `l2l report spec.json` on 2026-01-02T03:04:05Z from commit `abc123`, clean working tree; backend: cpu (x).');
    expect(page).toContain('Machine: 2 CPU cores (Some CPU), 1-minute load average 1.50 when the report started. The whole report took 1h 02m.');
    const dirty = renderReportPage({ ...base(), git: { commit: 'abc123', changed: ['a.ts', 'b.ts'] } });
    expect(dirty).toContain('from commit `abc123`, working tree with 2 uncommitted changes (`a.ts`, `b.ts`)');
    expect(renderReportPage({ ...base(), git: { commit: null, changed: null } })).toContain('from a directory outside any git checkout (no commit recorded)');
  });

  it('has a summary, one table, verdicts and plot per evaluation, and a timing table', () => {
    const page = renderReportPage(base());
    expect(page).toContain('| [Wins here](#wins-here) | 2 | 4 | 0.2000 ± 0.01000 | 0.2500 ± 0.01000 (adam) | 95.00% | 93.00% (adam) | lowest loss |');
    expect(page).toContain('| [ReLU (loses)](#relu-loses) | 2 | 4 | 0.4000 ± 0.01000 | 0.1000 ± 0.01000 (adam) | 90.00% | 97.00% (adam) | loses to adam |');
    expect(page).toContain('The learned optimizer has the lowest mean final loss in 1 of 2 evaluations; it loses in ReLU (loses).');
    expect(page).toContain('## Wins here\n\nA note.\n\nConfig `experiments/a.json`');
    expect(page).toContain('| **lstm** (learned) | — | 0.2000 ± 0.01000 | 0.9500 ± 0.001000 | 0/4 |');
    expect(page).toContain("- The learned optimizer loses on final loss: its mean final loss (0.4000) is above tuned adam's (0.1000) (1 of 1 baselines).");
    expect(page).toContain('Baseline learning rates were tuned on training tasks over the grid 0.01000, 0.1000, 1.000.');
    expect(page).toContain('![Wins here: loss curves](results-win.svg)');
    expect(page).not.toContain('Busy machine.');
    expect(renderReportPage({ ...base(), timingNote: 'Busy machine.' })).toMatch(/the slowdown of sharing the CPU\.\n\nBusy machine\.\n$/);
    expect(page).toContain('| evaluation: Wins here | 2m 05s | 1m 05s | cpu | 0.50 → 2.25 | this run |');
    expect(page).toContain('| evaluation: ReLU (loses) | 5s | 1s | cpu | 0.00 → 0.00 | collected (2026-01-01T00:00:00.000Z, commit `old999`); baselines reused from 2025-12-31T00:00:00.000Z (commit `old000`) |');
  });

  it('describes the meta-training behind the checkpoint', () => {
    const page = renderReportPage({
      ...base(),
      training: {
        dir: '../runs/m', config: 'm.json', snapshot: 'best', metaOptimizer: { type: 'lstm', options: { hidden: 20 } }, optimizee: { type: 'mnist-mlp' },
        training: { epochs: 3, unroll: 20 }, epochs: 3, bestEpoch: 2, bestValidation: 0.5, skipped: 1, seconds: 90, secondsSource: 'log', wallSeconds: 150, plot: 'results-meta-training.svg', trainedNow: false,
      },
    });
    expect(page).toContain('Checkpoint `../runs/m`, trained by `l2l train m.json --out ../runs/m`; the evaluations use its `best/` snapshot (best validation loss 0.5000 at epoch 2 of 3), and it is not retrained for any of them.');
    expect(page).toContain('- learned optimizer: `lstm` `{"hidden":20}`');
    expect(page).toContain(
      '- time: 1m 30s (sum of the per-epoch times in log.csv; validation runs not included), 2m 30s wall clock from the start of the last `l2l train` session to its last epoch (file times of experiment.json and log.csv; validation included); 1 episode skipped for non-finite losses',
    );
    expect(page).toContain(
      '| meta-training (`../runs/m`, 3 epochs) | 1m 30s of epochs (log.csv; validation not included); 2m 30s wall clock of the last `l2l train` session (file times; validation included) | — | — | — | an earlier `l2l train` |',
    );
    expect(page).toContain('![meta-training curves](results-meta-training.svg)');
  });

  it('makes GitHub heading anchors', () => {
    expect(anchor('MNIST, 2 hidden layers (20, 20)')).toBe('mnist-2-hidden-layers-20-20');
    expect(anchor('ReLU activation: 2,000 steps')).toBe('relu-activation-2000-steps');
  });
});
