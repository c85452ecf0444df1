import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import type { EvaluationResults } from '@l2l/core';

/**
 * Loss curves as a Vega-Lite chart rendered to SVG: one line per optimizer (mean over held-out tasks) with a
 * mean ± std band, log-scale y. The band's lower edge is clipped to a positive floor, since a log axis
 * cannot show values ≤ 0.
 */
export function lossCurvesSpec(results: EvaluationResults, title?: string): vegaLite.TopLevelSpec {
  const values: Array<{ optimizer: string; step: number; mean: number; lower: number; upper: number }> = [];
  const positives = results.optimizers.flatMap((o) => o.curve.mean.filter((m) => m > 0 && Number.isFinite(m)));
  const floor = positives.length ? Math.min(...positives) / 10 : 1e-12;
  for (const o of results.optimizers) {
    const label = o.kind === 'learned' ? `${o.name} (learned)` : o.name;
    o.curve.mean.forEach((mean, step) => {
      if (!Number.isFinite(mean)) return;
      const std = o.curve.std[step] ?? 0;
      values.push({ optimizer: label, step, mean: Math.max(mean, floor), lower: Math.max(mean - std, floor), upper: Math.max(mean + std, floor) });
    });
  }
  const x = { field: 'step', type: 'quantitative' as const, title: 'optimizee step' };
  const color = { field: 'optimizer', type: 'nominal' as const, title: 'optimizer' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: title ?? `${results.optimizee.type}: loss over ${results.tasks} held-out tasks (mean ± std)`,
    width: 560,
    height: 340,
    config: { legend: { labelLimit: 320 } }, // names such as "multiscale-adam (learned)" in full
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.18 }, encoding: { x, y: { field: 'lower', type: 'quantitative', scale: { type: 'log' } }, y2: { field: 'upper' }, color } },
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y: { field: 'mean', type: 'quantitative', scale: { type: 'log' }, title: 'loss (log scale)' }, color } },
    ],
  };
}

/** Renders the loss-curve chart to an SVG document (headless, no canvas needed). */
export async function lossCurvesSvg(results: EvaluationResults, title?: string): Promise<string> {
  const compiled = vegaLite.compile(lossCurvesSpec(results, title)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
