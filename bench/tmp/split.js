const core = require('/work/main/packages/core/dist');
const mo = require('/work/main/packages/meta-optimizers/dist');
(async () => {
  await core.useBackend('wasm');
  const meta = new mo.LstmMetaOptimizer({}, 0);
  const n = 15910, U = 20;
  const run = meta.optimizer().fused.open(n);
  const g = new Float32Array(n).map(() => (Math.random() - 0.5) * 1e-2), p = new Float32Array(n);
  const adj = Array.from({ length: U }, () => g);
  const f = [], b = [];
  for (let it = 0; it < 6; it++) {
    let c0 = process.cpuUsage();
    run.beginUnroll(U); for (let t = 0; t < U; t++) run.step(g, p);
    let c = process.cpuUsage(c0); f.push((c.user + c.system) / 1e6);
    c0 = process.cpuUsage(); run.backward(adj); c = process.cpuUsage(c0); b.push((c.user + c.system) / 1e6);
  }
  const med = (a) => a.slice(1).sort()[2];
  console.log('fwd', med(f).toFixed(3), 'bwd', med(b).toFixed(3));
})();
