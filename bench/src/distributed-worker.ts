/** One worker process of bench/distributed.ts: `node distributed-worker.js <redis url>`; SIGTERM stops it. */
import { baselinesModule } from '@l2l/baselines';
import { ComponentRegistry, createContainer } from '@l2l/core';
import { startWorker } from '@l2l/distributed';
import { metaOptimizersModule } from '@l2l/meta-optimizers';
import { optimizeesModule } from '@l2l/optimizees';

const registry = createContainer(optimizeesModule, metaOptimizersModule, baselinesModule).get(ComponentRegistry);

void (async () => {
  const worker = await startWorker({ redis: process.argv[2]!, registry: () => registry });
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
})();
