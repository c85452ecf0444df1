import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

/** One epoch of an `l2l train` log.csv. */
export interface TrainingLogRow {
  epoch: number;
  finalLoss: number | null;
  validationLoss: number | null;
}

/**
 * Meta-training curves as a Vega-Lite chart: per epoch, the mean final loss of the training episodes and
 * (when validated) the validation loss (the mean over the validation runs' steps), log-scale y. Non-finite and missing values are left out.
 */
export function trainingCurvesSpec(rows: readonly TrainingLogRow[], title: string): vegaLite.TopLevelSpec {
  const values: Array<{ epoch: number; series: string; loss: number }> = [];
  for (const r of rows) {
    if (r.finalLoss !== null && Number.isFinite(r.finalLoss) && r.finalLoss > 0) values.push({ epoch: r.epoch, series: 'training: final loss', loss: r.finalLoss });
    if (r.validationLoss !== null && Number.isFinite(r.validationLoss) && r.validationLoss > 0) {
      values.push({ epoch: r.epoch, series: 'validation: mean loss', loss: r.validationLoss });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 560,
    height: 260,
    data: { values },
    mark: { type: 'line', point: true, strokeWidth: 2 },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch' },
      y: { field: 'loss', type: 'quantitative', scale: { type: 'log' }, title: 'optimizee loss (log scale)' },
      color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 400 } },
    },
  };
}

export async function trainingCurvesSvg(rows: readonly TrainingLogRow[], title: string): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(trainingCurvesSpec(rows, title)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
