import type { EvaluationResults, OptimizerResult } from '@l2l/core';
import { anchor, compare, renderReportPage, trainingStability, verdictSentences, type EvaluationRunInfo, type ReportEvaluationPage, type ReportPageInput, type TrainingSummary } from './page';

/** Per-task offsets shared by every optimizer: paired differences are then exactly the differences of the means. */
const OFFSETS = [0.01, -0.01, 0.02, -0.02];

function opt(kind: string, final: number, accuracy?: number, extra: Partial<OptimizerResult> = {}): OptimizerResult {
  const perTask = (m: number) => OFFSETS.map((e) => (Number.isFinite(m) ? m + e : null));
  return {
    name: kind === 'learned' ? 'lstm' : `${kind}(lr=0.1)`,
    kind,
    learningRate: kind === 'learned' ? undefined : 0.1,
    steps: 2,
    tasks: 4,
    curve: { mean: [2, 1, final], std: [0, 0.1, 0.01] },
    final: { mean: final, std: 0.01 },
    finalMean: { mean: final, std: 0.01 },
    diverged: 0,
    metrics: accuracy === undefined ? undefined : { testAccuracy: { mean: accuracy, std: 0.001 } },
    perTask: { final: perTask(final), finalMean: perTask(final), ...(accuracy === undefined ? {} : { metrics: { testAccuracy: perTask(accuracy) } }) },
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
  it('says the learned optimizer wins against each baseline whose paired interval excludes zero in its favour', () => {
    const r = results([opt('learned', 0.2, 0.95), opt('sgd', 0.5, 0.9), opt('adam', 0.25, 0.93)]);
    const c = compare(r);
    expect(c.wins).toBe(true);
    expect(c.beats.map((o) => o.kind)).toEqual(['sgd', 'adam']);
    expect(verdictSentences(r)).toEqual([
      'The learned optimizer wins against tuned sgd (learning rate 0.1000) on final loss (step 2): mean difference -0.300, 95 % CI [-0.300, -0.300], which excludes zero; lower on 4 of 4 tasks.',
      'The learned optimizer wins against tuned adam (learning rate 0.1000) on final loss (step 2): mean difference -0.0500, 95 % CI [-0.0500, -0.0500], which excludes zero; lower on 4 of 4 tasks.',
      'The learned optimizer wins against tuned sgd (learning rate 0.1000) on testAccuracy: mean difference 0.0500, 95 % CI [0.0500, 0.0500], which excludes zero; higher on 4 of 4 tasks.',
      'The learned optimizer wins against tuned adam (learning rate 0.1000) on testAccuracy: mean difference 0.0200, 95 % CI [0.0200, 0.0200], which excludes zero; higher on 4 of 4 tasks.',
    ]);
  });

  it('says "ties" when the interval includes zero, even with a lower mean, and "loses" when it excludes zero against it', () => {
    // Per-task differences −0.15, 0.05, −0.25, 0.15: mean −0.05, but the interval spans zero.
    const learned = opt('learned', 0.4, undefined, { perTask: { final: [0.3, 0.5, 0.2, 0.6], finalMean: [0.3, 0.5, 0.2, 0.6] } });
    const flat = opt('rmsprop', 0.45, undefined, { perTask: { final: [0.45, 0.45, 0.45, 0.45], finalMean: [0.45, 0.45, 0.45, 0.45] } });
    const r = results([learned, flat, opt('adam', 0.1, undefined, { perTask: { final: [0.1, 0.3, 0, 0.4], finalMean: [0.1, 0.3, 0, 0.4] } })]);
    const c = compare(r);
    expect(c.wins).toBe(false);
    expect(c.ties.map((o) => o.kind)).toEqual(['rmsprop']);
    expect(c.losesTo.map((o) => o.kind)).toEqual(['adam']);
    const [tie, lose] = verdictSentences(r);
    expect(tie).toMatch(/^The learned optimizer ties with tuned rmsprop \(learning rate 0\.1000\) on final loss \(step 2\): mean difference -0\.0500, 95 % CI \[-0\.[0-9]+, 0\.[0-9]+\] includes zero, so neither is better on these tasks; lower on 2 of 4 tasks\.$/);
    expect(lose).toBe('The learned optimizer loses to tuned adam (learning rate 0.1000) on final loss (step 2): mean difference 0.200, 95 % CI [0.200, 0.200], which excludes zero; lower on 0 of 4 tasks.');
  });

  it('reports divergence, a learned optimizer that diverged everywhere, a tuned rate at the grid edge, and results without per-task values', () => {
    const partly = results([opt('learned', 0.2), opt('sgd', 0.3, undefined, { diverged: 1 }), opt('adam', NaN, undefined, { diverged: 4 })], 'high');
    const s = verdictSentences(partly);
    expect(s[0]).toMatch(/^The learned optimizer wins against tuned sgd/);
    expect(s[1]).toMatch(/^The learned optimizer ties with tuned adam .* 95 % CI \[-Infinity, Infinity\] includes zero, .*lower on 0 of 0 tasks \(4 tasks left out: a run diverged or lacks the value\)\.$/);
    expect(s).toContain('1 of 4 runs of sgd diverged (non-finite loss) and are left out of its mean and of its paired comparisons.');
    expect(s).toContain('adam diverged on all 4 tasks.');
    expect(s).toContain('The tuned learning rate of sgd (0.1000) is the largest in its grid: a larger one might do better, so this comparison may flatter the learned optimizer.');
    const dead = results([opt('learned', NaN, undefined, { diverged: 4 }), opt('sgd', 0.3)]);
    expect(compare(dead).wins).toBe(false);
    expect(verdictSentences(dead)[0]).toBe('The learned optimizer diverged on all 4 tasks: it loses to every baseline.');
    expect(compare(results([opt('sgd', 0.3)])).wins).toBeNull();
    const old = results([opt('learned', 0.2, undefined, { perTask: undefined as never }), opt('sgd', 0.3, undefined, { perTask: undefined as never })]);
    expect(compare(old).wins).toBeNull();
    expect(verdictSentences(old)[0]).toMatch(/hold no per-task values \(made before paired comparisons\), so no verdict is given/);
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
    training: [],
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
    expect(page).toContain('| [Wins here](#wins-here) | 2 | 4 | 0.2000 ± 0.01000 | 0.2500 ± 0.01000 (adam) | 95.00% | 93.00% (adam) | wins against adam |');
    expect(page).toContain('| [ReLU (loses)](#relu-loses) | 2 | 4 | 0.4000 ± 0.01000 | 0.1000 ± 0.01000 (adam) | 90.00% | 97.00% (adam) | loses to adam |');
    expect(page).toContain(
      'The learned optimizer beats every tuned baseline on final loss (mean of the last 10 % of steps) (every paired 95 % interval excludes zero in its favour) in 1 of 2 evaluations; elsewhere: ReLU (loses): loses to adam.',
    );
    expect(page).toContain('## Wins here\n\nA note.\n\nConfig `experiments/a.json`');
    expect(page).toContain('| **lstm** (learned) | — | 0.2000 ± 0.01000 | 0.2000 ± 0.01000 | 0.9500 ± 0.001000 | 0/4 |');
    expect(page).toContain('| lstm | adam(lr=0.1) | final loss (step 2) (ranked by) | -0.05000 | [-0.0500, -0.0500] | 4/4 | **wins** |');
    expect(page).toContain('- The learned optimizer loses to tuned adam (learning rate 0.1000) on final loss (step 2): mean difference 0.300, 95 % CI [0.300, 0.300], which excludes zero; lower on 0 of 4 tasks.');
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
      training: [{
        name: 'lstm', dir: '../runs/m', config: 'm.json', snapshot: 'best', metaOptimizer: { type: 'lstm', options: { hidden: 20 } }, optimizee: { type: 'mnist-mlp' },
        training: { epochs: 3, unroll: 20 }, epochs: 3, bestEpoch: 2, bestValidation: 0.5, skipped: 1, seconds: 90, secondsSource: 'log', wallSeconds: 150, plot: 'results-meta-training.svg', trainedNow: false,
      }],
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

  it('says in the timing table when the learned optimizer\'s run was reused', () => {
    const input = base();
    input.evaluations[0]!.run.learned = [{ name: 'lstm', snapshot: 'run/best', reused: true, startedAt: '2025-12-30T00:00:00.000Z', seconds: 60, commit: 'old111' }];
    expect(renderReportPage(input)).toContain('| evaluation: Wins here | 2m 05s | 1m 05s | cpu | 0.50 → 2.25 | this run; learned optimizer reused from 2025-12-30T00:00:00.000Z (commit `old111`) |');
  });

  it('makes GitHub heading anchors', () => {
    expect(anchor('MNIST, 2 hidden layers (20, 20)')).toBe('mnist-2-hidden-layers-20-20');
    expect(anchor('ReLU activation: 2,000 steps')).toBe('relu-activation-2000-steps');
  });
});

describe('page with several learned optimizers', () => {
  const learned = (name: string, final: number, accuracy?: number, extra: Partial<OptimizerResult> = {}) => ({ ...opt('learned', final, accuracy, extra), name });
  const training = (name: string, dir: string): TrainingSummary => ({
    name, dir, config: `${name}.json`, snapshot: 'best', metaOptimizer: { type: name }, optimizee: { type: 'mnist-mlp' }, training: { epochs: 3 }, epochs: 3,
    bestEpoch: 2, bestValidation: 0.5, skipped: 0, seconds: 90, secondsSource: 'measured', wallSeconds: null, plot: `results-meta-training-${name}.svg`, trainedNow: false,
  });
  const evaluation = (name: string, title: string, r: EvaluationResults, learnedRuns: EvaluationRunInfo['learned']): ReportEvaluationPage => ({
    entry: { name, title, note: null, config: 'a.json', steps: null, tasks: null },
    config: 'experiments/a.json',
    run: {
      name, config: 'a.json', steps: 2, tasks: 4, checkpoint: null, checkpoints: ['runs/lstm/best', 'runs/rnnprop/best'], learned: learnedRuns, backend: 'cpu', startedAt: 'T',
      seconds: 10, tuningSeconds: 5, learnedSeconds: 3, loadBefore: 0, loadAfter: 0, git: { commit: 'abc123', changed: [] }, command: 'l2l report spec.json',
      baselines: { reused: false, startedAt: 'T', seconds: 7, commit: 'abc123' },
    },
    results: r,
    plot: `results-${name}.svg`,
    ranNow: true,
  });
  const fresh = (name: string) => ({ name, snapshot: `runs/${name}/best`, reused: false, startedAt: 'T', seconds: 1, commit: 'abc123' });
  const input = (): ReportPageInput => ({
    title: 'Two learned', description: null, command: 'l2l report spec.json', git: { commit: 'abc123', changed: [] }, date: 'D', backend: 'backend: cpu',
    machine: { cpus: 2, model: 'CPU', loadAverage: 0 }, seconds: 60,
    training: [training('lstm', 'runs/lstm'), training('rnnprop', 'runs/rnnprop')],
    evaluations: [
      // Both beat the baselines; rnnprop is lower.
      evaluation('short', 'Short', results([learned('lstm', 0.2, 0.95), learned('rnnprop', 0.15, 0.96), opt('sgd', 0.5, 0.9), opt('adam', 0.25, 0.93)]), [fresh('lstm'), fresh('rnnprop')]),
      // lstm loses to adam, rnnprop beats both.
      evaluation('long', 'Long', results([learned('lstm', 0.4, 0.9), learned('rnnprop', 0.05, 0.98), opt('sgd', 0.5, 0.91), opt('adam', 0.1, 0.97)]), [
        { ...fresh('lstm'), reused: true, startedAt: '2025-01-01T00:00:00.000Z', commit: 'old000' },
        { ...fresh('rnnprop'), reused: true, startedAt: '2025-01-02T00:00:00.000Z', commit: 'abc123' },
      ]),
      // rnnprop diverges everywhere, one lstm run diverges, and lstm still loses to adam.
      evaluation('relu', 'ReLU', results([learned('lstm', 0.3, undefined, { diverged: 1 }), learned('rnnprop', NaN, undefined, { diverged: 4 }), opt('sgd', 0.5), opt('adam', 0.1)], 'low'), [fresh('lstm'), fresh('rnnprop')]),
    ],
  });

  it('summarises each learned optimizer in its own column, the best of each side, and which ones beat every baseline', () => {
    const page = renderReportPage(input());
    const summary = page.split('## Summary\n\n')[1]!.split('\n## ')[0]!;
    expect(summary.split('\n').slice(0, 5)).toEqual([
      '| evaluation | steps | tasks | lstm: final loss (mean of the last 10 % of steps) | rnnprop: final loss (mean of the last 10 % of steps) | best tuned baseline: final loss (mean of the last 10 % of steps) | best learned: test accuracy | best baseline: test accuracy | learned vs each tuned baseline (paired, 95 % CI) |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      '| [Short](#short) | 2 | 4 | 0.2000 | 0.1500 | 0.2500 (adam) | 96.00% (rnnprop) | 93.00% (adam) | lstm: wins against sgd and adam<br>rnnprop: wins against sgd and adam |',
      '| [Long](#long) | 2 | 4 | 0.4000 | 0.05000 | 0.1000 (adam) | 98.00% (rnnprop) | 97.00% (adam) | lstm: wins against sgd, loses to adam<br>rnnprop: wins against sgd and adam |',
      '| [ReLU](#relu) | 2 | 4 | 0.3000 | diverged | 0.1000 (adam) | — | — | lstm: wins against sgd, loses to adam<br>rnnprop: diverged on every task |',
    ]);
    expect(summary).toContain(
      [
        'lstm beats every tuned baseline on final loss (mean of the last 10 % of steps) (every paired 95 % interval excludes zero in its favour) in 1 of 3 evaluations; elsewhere: Long: wins against sgd, loses to adam; ReLU: wins against sgd, loses to adam.',
        '',
        'rnnprop beats every tuned baseline on final loss (mean of the last 10 % of steps) (every paired 95 % interval excludes zero in its favour) in 2 of 3 evaluations; elsewhere: ReLU: diverged on every task.',
        '',
        'Lowest mean final loss (mean of the last 10 % of steps) among the learned optimizers (means only, not a paired test between them): lstm in ReLU; rnnprop in Short and Long.',
      ].join('\n'),
    );
    expect(page).not.toContain('The learned optimizer');
  });

  it('leaves out the accuracy columns when no result has one', () => {
    const i = input();
    for (const e of i.evaluations) for (const o of e.results.optimizers) delete o.metrics;
    const page = renderReportPage(i);
    expect(page).toContain(
      '| evaluation | steps | tasks | lstm: final loss (mean of the last 10 % of steps) | rnnprop: final loss (mean of the last 10 % of steps) | best tuned baseline: final loss (mean of the last 10 % of steps) | learned vs each tuned baseline (paired, 95 % CI) |',
    );
    expect(page).toContain('| [Short](#short) | 2 | 4 | 0.2000 | 0.1500 | 0.2500 (adam) | lstm: wins against sgd and adam<br>rnnprop: wins against sgd and adam |');
  });

  it('names each learned optimizer in the verdicts, and says divergence and grid edges once', () => {
    const page = renderReportPage(input());
    const section = (title: string) => page.split('\n## ').find((s) => s.startsWith(`${title}\n`))!;
    const long = section('Long');
    expect(long).toContain('| **rnnprop** (learned) | — | 0.05000 ± 0.01000 | 0.05000 ± 0.01000 | 0.9800 ± 0.001000 | 0/4 |');
    expect(long).toContain('| **lstm** (learned) | — | 0.4000 ± 0.01000 | 0.4000 ± 0.01000 | 0.9000 ± 0.001000 | 0/4 |');
    expect(long).toContain(
      [
        '- lstm wins against tuned sgd (learning rate 0.1000) on final loss (step 2): mean difference -0.100, 95 % CI [-0.100, -0.100], which excludes zero; lower on 4 of 4 tasks.',
        '- lstm loses to tuned adam (learning rate 0.1000) on final loss (step 2): mean difference 0.300, 95 % CI [0.300, 0.300], which excludes zero; lower on 0 of 4 tasks.',
        '- lstm loses to tuned sgd (learning rate 0.1000) on testAccuracy: mean difference -0.0100, 95 % CI [-0.0100, -0.0100], which excludes zero; higher on 0 of 4 tasks.',
        '- lstm loses to tuned adam (learning rate 0.1000) on testAccuracy: mean difference -0.0700, 95 % CI [-0.0700, -0.0700], which excludes zero; higher on 0 of 4 tasks.',
        '- rnnprop wins against tuned sgd (learning rate 0.1000) on final loss (step 2): mean difference -0.450, 95 % CI [-0.450, -0.450], which excludes zero; lower on 4 of 4 tasks.',
      ].join('\n'),
    );
    expect(verdictSentences(input().evaluations[2]!.results)).toEqual([
      'lstm wins against tuned sgd (learning rate 0.1000) on final loss (step 2): mean difference -0.200, 95 % CI [-0.200, -0.200], which excludes zero; lower on 4 of 4 tasks.',
      'lstm loses to tuned adam (learning rate 0.1000) on final loss (step 2): mean difference 0.200, 95 % CI [0.200, 0.200], which excludes zero; lower on 0 of 4 tasks.',
      'rnnprop diverged on all 4 tasks: it loses to every baseline.',
      '1 of 4 runs of lstm diverged (non-finite loss) and are left out of its mean and of its paired comparisons.',
      'The tuned learning rate of sgd (0.1000) is the smallest in its grid: a smaller one might do better, so this comparison may flatter the learned optimizers.',
    ]);
  });

  it('has a meta-training subsection and a timing row per checkpoint, and says which learned runs were reused', () => {
    const page = renderReportPage(input());
    const meta = page.split('\n## Meta-training\n\n')[1]!.split('\n## ')[0]!;
    expect(meta).toMatch(/^### lstm\n\nCheckpoint `runs\/lstm`, trained by `l2l train lstm.json --out runs\/lstm`; the evaluations use its `best\/` snapshot \(best validation loss 0.5000 at epoch 2 of 3\)/);
    expect(meta).toContain('\n### rnnprop\n\nCheckpoint `runs/rnnprop`, trained by `l2l train rnnprop.json --out runs/rnnprop`;');
    expect(meta).toContain('- learned optimizer: `rnnprop`\n');
    expect(meta).toContain('![lstm: meta-training curves](results-meta-training-lstm.svg)');
    expect(meta).toContain('![rnnprop: meta-training curves](results-meta-training-rnnprop.svg)');
    expect(page).toContain('| meta-training of lstm (`runs/lstm`, 3 epochs) | 1m 30s | — | — | — | an earlier `l2l report --train` |');
    expect(page).toContain('| meta-training of rnnprop (`runs/rnnprop`, 3 epochs) | 1m 30s | — | — | — | an earlier `l2l report --train` |');
    expect(page).toContain('| evaluation: Short | 10s | 5s | cpu | 0.00 → 0.00 | this run |');
    expect(page).toContain(
      '| evaluation: Long | 10s | 5s | cpu | 0.00 → 0.00 | this run; learned runs reused: lstm from 2025-01-01T00:00:00.000Z (commit `old000`), rnnprop from 2025-01-02T00:00:00.000Z |',
    );
  });
});

describe('trainingStability', () => {
  it('measures the meta-loss spread over the last half, validation rises and where validation ended', () => {
    const rows = [
      { metaLoss: 10, validationLoss: 5 },
      { metaLoss: 8, validationLoss: null },
      { metaLoss: 4, validationLoss: 3 },
      { metaLoss: 6, validationLoss: 4 },
    ];
    const s = trainingStability(rows);
    // Last half: 4 and 6, mean 5, sample std √2.
    expect(s.metaLossCv).toBeCloseTo(Math.SQRT2 / 5, 12);
    expect(s).toMatchObject({ validationRises: 1, validations: 3 });
    expect(s.lastOverBest).toBeCloseTo(4 / 3, 12);
    expect(trainingStability([{ metaLoss: 1, validationLoss: null }])).toEqual({ metaLossCv: null, validationRises: 0, validations: 0, lastOverBest: null });
  });
});
