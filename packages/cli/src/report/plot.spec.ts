import type { EvaluationResults } from '@l2l/core';
import { lossCurvesSpec, lossCurvesSvg } from './plot';

const results: EvaluationResults = {
  experiment: 'demo',
  optimizee: { type: 'quadratic' },
  steps: 3,
  tasks: 2,
  seed: 0,
  tuning: [],
  optimizers: [
    { name: 'lstm', kind: 'learned', steps: 3, tasks: 2, curve: { mean: [4, 1, 0.5, 0.1], std: [1, 2, 0.1, 0.01] }, final: { mean: 0.1, std: 0.01 }, finalMean: { mean: 0.1, std: 0.01 }, diverged: 0, perTask: { final: [0.09, 0.11], finalMean: [0.09, 0.11] }, seconds: 1 },
    { name: 'adam(lr=0.1)', kind: 'adam', learningRate: 0.1, steps: 3, tasks: 2, curve: { mean: [4, 2, 1, NaN], std: [1, 1, 1, 0] }, final: { mean: 1, std: 0 }, finalMean: { mean: 1, std: 0 }, diverged: 1, perTask: { final: [1, null], finalMean: [1, null] }, seconds: 1 },
  ],
};

describe('loss-curve plot', () => {
  it('encodes mean ± std bands with a positive floor for the log axis and skips non-finite points', () => {
    const spec = lossCurvesSpec(results) as unknown as { data: { values: Array<Record<string, number | string>> } };
    const values = spec.data.values;
    expect(values).toHaveLength(4 + 3);
    const lstm1 = values.find((v) => v.optimizer === 'lstm (learned)' && v.step === 1)!;
    expect(lstm1.upper).toBe(3);
    expect(lstm1.lower).toBeCloseTo(0.01); // 1 − 2 < 0 → floor = min positive mean (0.1) / 10
    expect(values.some((v) => v.optimizer === 'adam(lr=0.1)' && v.step === 3)).toBe(false);
  });

  it('renders an SVG with a line per optimizer and the legend', async () => {
    const svg = await lossCurvesSvg(results);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('lstm (learned)');
    expect(svg).toContain('adam(lr=0.1)');
    expect(svg).toContain('loss (log scale)');
    expect((svg.match(/aria-roledescription="line mark"/g) ?? []).length).toBe(2);
  });
});
