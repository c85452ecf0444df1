const core = require('/work/main/packages/core/dist');
const mo = require('/work/main/packages/meta-optimizers/dist');
const opt = require('/work/main/packages/optimizees/dist');
(async () => {
  await core.useBackend('wasm');
  const fam = opt.createQuadraticFamily({ dims: 10, batch: 128 });
  const task = fam.build(fam.sample(0, 'train'));
  const params = task.initParams(0);
  const layout = core.flatLayout(params);
  const theta = new Float32Array(layout.total); core.flattenInto(params, layout, theta);
  const grads = new Float32Array(layout.total);
  const meta = new mo.LstmMetaOptimizer({}, 0);
  const run = meta.optimizer().fused.open(layout.total);
  for (let it = 0; it < 5; it++) {
    let c0 = process.cpuUsage();
    for (let t = 0; t < 20; t++) core.flatLossAndGrad(task, theta, layout, t, 1, grads);
    const c1 = process.cpuUsage(c0);
    c0 = process.cpuUsage();
    run.reloadWeights(); run.beginUnroll(20);
    for (let t = 0; t < 20; t++) run.step(grads, theta);
    run.backward(Array.from({ length: 20 }, () => grads));
    const c2 = process.cpuUsage(c0);
    console.log('20 loss+grad', ((c1.user + c1.system) / 1e6).toFixed(4), 'kernel', ((c2.user + c2.system) / 1e6).toFixed(4));
  }
})();
