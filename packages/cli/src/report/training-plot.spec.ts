import { trainingCurvesSpec, trainingCurvesSvg } from './training-plot';

const rows = [
  { epoch: 1, finalLoss: 0.5, validationLoss: 0.8 },
  { epoch: 2, finalLoss: 0.4, validationLoss: null },
  { epoch: 3, finalLoss: NaN, validationLoss: 0.6 },
];

describe('meta-training plot', () => {
  it('has one point per finite value: training final losses and validation losses, log-scale y', () => {
    const spec = trainingCurvesSpec(rows, 't') as unknown as { data: { values: Array<{ epoch: number; series: string; loss: number }> }; encoding: { y: { scale: { type: string } } } };
    expect(spec.data.values).toEqual([
      { epoch: 1, series: 'training: final loss', loss: 0.5 },
      { epoch: 1, series: 'validation: mean loss', loss: 0.8 },
      { epoch: 2, series: 'training: final loss', loss: 0.4 },
      { epoch: 3, series: 'validation: mean loss', loss: 0.6 },
    ]);
    expect(spec.encoding.y.scale.type).toBe('log');
  });

  it('renders an SVG with both series in the legend', async () => {
    const svg = await trainingCurvesSvg(rows, 'meta-training of runs/x');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('training: final loss');
    expect(svg).toContain('validation: mean loss');
    expect(svg).toContain('meta-training of runs/x');
  });
});
