/**
 * Does a GPU compute what cpu computes? One JSON line per workload: the meta-gradient of the first truncation
 * (tbptt, an unroll of 20) of the bench's Q, M and MR workloads on the cpu backend (the tape: the reference) and
 * on `backend`, as ‖g − g_cpu‖ / ‖g_cpu‖ over all of φ's weights, beside the two meta-losses. Run it on the
 * machine whose timings you report (`pnpm bench --backend webgpu`): Mesa's software device passes it too.
 *
 *     pnpm build && node bench/dist/webgpu-check.js [--backend webgpu] [--only Q,M,MR] [--reference FILE | --save FILE]
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { BUILTIN_ESTIMATORS, useBackend, type BackendChoice, type MetaOptimizer, type TaskFamily } from '@l2l/core';
import { LstmMetaOptimizer, RnnpropMetaOptimizer } from '@l2l/meta-optimizers';
import { createMnistMlpFamily, createQuadraticFamily } from '@l2l/optimizees';

const PROBLEMS: Record<string, () => { family: TaskFamily; meta: MetaOptimizer }> = {
  Q: () => ({ family: createQuadraticFamily({ dims: 10, batch: 128 }), meta: new LstmMetaOptimizer({}, 0) }),
  M: () => ({ family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), meta: new LstmMetaOptimizer({ preprocessing: 'logAndSign' }, 0) }),
  MR: () => ({ family: createMnistMlpFamily({ hidden: [20], activation: 'sigmoid', batchSize: 128 }), meta: new RnnpropMetaOptimizer({}, 0) }),
};

const UNROLL = 20;

/** The first truncation's meta-gradient (weights in name order, flattened) and meta-loss, on the backend in use. */
async function metaGradient(name: string): Promise<{ grad: Float64Array; metaLoss: number; seconds: number }> {
  const { family, meta } = PROBLEMS[name]!();
  const task = family.build(family.sample(0, 'train'));
  // The tape on every backend: the reference path, and the only one webgpu has.
  const estimator = BUILTIN_ESTIMATORS.tbptt({}).create({ meta, training: { lossWeights: 'uniform', secondDerivatives: false, tasksPerStep: 1, kernel: 'tfjs' } });
  const state = estimator.init(task, task.initParams(0), 0);
  try {
    const start = performance.now();
    const { grads, metaLosses } = await estimator.estimate([state], UNROLL, 0);
    const names = Object.keys(grads).sort();
    const parts = await Promise.all(names.map((n) => grads[n]!.data()));
    const seconds = (performance.now() - start) / 1e3;
    tf.dispose(Object.values(grads));
    const grad = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
    let k = 0;
    for (const p of parts) for (const v of p) grad[k++] = v;
    return { grad, metaLoss: metaLosses[0]!, seconds };
  } finally {
    state.dispose();
    estimator.dispose();
    task.dispose();
    meta.dispose();
  }
}

function relL2(a: Float64Array, ref: Float64Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (a[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

const USAGE = `usage: node bench/dist/webgpu-check.js [--backend webgpu] [--only Q,M,MR] [--reference FILE | --save FILE]

  --reference FILE  read cpu's meta-gradients from FILE (written by --save) instead of computing them (cpu's
                    tape takes about a minute on M)
  --save FILE       compute cpu's meta-gradients, write them to FILE, and check nothing`;

type Reference = Record<string, { grad: number[]; metaLoss: number; seconds: number }>;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { backend: { type: 'string', default: 'webgpu' }, only: { type: 'string', default: Object.keys(PROBLEMS).join(',') }, reference: { type: 'string' }, save: { type: 'string' } } });
  const names = values.only!.split(',').filter(Boolean);
  const unknown = names.filter((n) => !PROBLEMS[n]);
  if (unknown.length || (values.reference && values.save)) throw new Error(`${unknown.length ? `unknown workload ${unknown.join(', ')}` : '--reference and --save exclude each other'}\n${USAGE}`);
  const reference: Reference = values.reference ? (JSON.parse(fs.readFileSync(values.reference, 'utf8')) as Reference) : {};
  if (values.save) {
    await useBackend('cpu');
    for (const name of names) {
      const r = await metaGradient(name);
      reference[name] = { grad: Array.from(r.grad), metaLoss: r.metaLoss, seconds: r.seconds };
    }
    fs.writeFileSync(values.save, JSON.stringify(reference));
    return;
  }
  for (const name of names) {
    let want: { grad: Float64Array; metaLoss: number; seconds: number } | undefined = reference[name] && { grad: Float64Array.from(reference[name].grad), metaLoss: reference[name].metaLoss, seconds: reference[name].seconds };
    if (!want) {
      if (values.reference) throw new Error(`${values.reference} has no ${name}`);
      await useBackend('cpu');
      want = await metaGradient(name);
    }
    const info = await useBackend(values.backend as BackendChoice);
    const before = tf.memory().numTensors;
    const got = await metaGradient(name);
    const finite = got.grad.every(Number.isFinite) && Number.isFinite(got.metaLoss);
    console.log(
      JSON.stringify({
        what: `meta-gradient of the first ${UNROLL}-step truncation (tbptt, tape) on ${values.backend} against cpu${values.reference ? ` (${values.reference})` : ''}`,
        name,
        backend: info.name,
        ...(info.device && { device: info.device }),
        weights: want.grad.length,
        rel_l2_grad: Number(relL2(got.grad, want.grad).toPrecision(3)),
        meta_loss_cpu: want.metaLoss,
        meta_loss: got.metaLoss,
        rel_meta_loss: Number((Math.abs(got.metaLoss - want.metaLoss) / Math.abs(want.metaLoss)).toPrecision(3)),
        finite,
        leaked_tensors: tf.memory().numTensors - before,
        // The first call on a backend compiles its programs: a check, not a timing.
        seconds_cpu: Number(want.seconds.toFixed(3)),
        seconds: Number(got.seconds.toFixed(3)),
      }),
    );
    if (!finite) process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
