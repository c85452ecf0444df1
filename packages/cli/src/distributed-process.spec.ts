import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startLocalRedis, type LocalRedis } from '@l2l/distributed';

/**
 * `l2l train --redis` with `l2l worker` processes: the checkpoint equals a run in one process bit for bit, and a
 * worker killed with -9 in the middle of an episode has its shards replayed by another worker, with the same result.
 */
const BIN = path.resolve(__dirname, '../dist/bin.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-distributed-'));
const children: ChildProcess[] = [];
let redis: LocalRedis;

const experiment = {
  name: 'distributed',
  backend: 'wasm',
  seed: 11,
  optimizee: { type: 'quadratic', options: { dims: 10, batch: 32 } },
  metaOptimizer: { type: 'lstm', options: { layers: 2, hidden: 20 } },
  training: { epochs: 2, episodesPerEpoch: 6, steps: 60, unroll: 20, learningRate: 0.01, validateEvery: 2, validationTasks: 2, tasksPerStep: 2 },
};

const EXAMPLE = path.resolve(__dirname, '../../../examples/plugin-rosenbrock');

beforeAll(async () => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} is missing: build first (pnpm build)`);
  redis = await startLocalRedis();
  fs.writeFileSync(path.join(root, 'exp.json'), JSON.stringify(experiment));
  // A project with the example plugin installed, for runs whose experiment lists it.
  fs.mkdirSync(path.join(root, 'node_modules'));
  fs.symlinkSync(EXAMPLE, path.join(root, 'node_modules', 'l2l-plugin-rosenbrock'), 'dir');
  const withPlugin = {
    ...experiment,
    plugins: ['l2l-plugin-rosenbrock'],
    optimizee: { type: 'rosenbrock', options: { dims: 3 } },
    evaluation: { baselines: [] },
    training: { ...experiment.training, epochs: 1, episodesPerEpoch: 2 },
  };
  fs.writeFileSync(path.join(root, 'plugin.json'), JSON.stringify(withPlugin));
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A child l2l process whose output is collected; `lines` resolves when a line matching `re` appears. */
function l2l(args: string[]): { child: ChildProcess; output: () => string; line(re: RegExp): Promise<void>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  const waiters: Array<[RegExp, () => void]> = [];
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters.splice(0)) (w[0].test(text) ? w[1] : () => waiters.push(w))();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    child,
    output: () => text,
    line: (re) => new Promise<void>((resolve) => (re.test(text) ? resolve() : waiters.push([re, resolve]))),
    exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
}

const runSync = (args: string[], timeout = 120_000) => spawnSync(process.execPath, [BIN, ...args], { cwd: root, encoding: 'utf8', timeout });

/** The run of exp.json in one process, which several tests compare with (made once). */
function localRun(): void {
  if (!fs.existsSync(path.join(root, 'local', 'latest'))) expect(runSync(['train', 'exp.json', '--out', 'local']).status).toBe(0);
}

/** Stops an `l2l worker` as Ctrl-C would; it exits cleanly. */
async function stop(worker: ReturnType<typeof l2l>): Promise<void> {
  worker.child.kill('SIGTERM');
  expect(await worker.exit).toBe(0);
}

function weights(dir: string): Buffer {
  return fs.readFileSync(path.join(root, dir, 'latest', 'weights.bin'));
}

it('a worker killed with -9 mid-episode: another replays its shards and the run ends as one in one process, bit for bit', async () => {
  localRun();

  const first = l2l(['worker', '--redis', redis.url, '--concurrency', '2', '--lock-seconds', '1']);
  await first.line(/waiting for shards/);
  const learner = l2l(['train', 'exp.json', '--out', 'remote', '--redis', redis.url]);
  // Killed once it has finished an episode's shards and started the next: mid-run, in the middle of an episode.
  await first.line(/episode 2 shard \d \(task \d\): started/);
  first.child.kill('SIGKILL');
  await first.exit;
  const second = l2l(['worker', '--redis', redis.url, '--concurrency', '2', '--lock-seconds', '1']);
  expect(await learner.exit).toBe(0);
  expect(learner.output()).toMatch(/tasks on workers: 2 shards \(one task each\) per episode/);
  expect(Buffer.compare(weights('remote'), weights('local'))).toBe(0);
  // The second worker took over the shards the killed one had started and not finished (replaying them from the
  // episode's start), and finished the run. (Which ones depends on when the kill landed; at least one of episode 2's.)
  const unfinished = [...first.output().matchAll(/(epoch \d+ episode \d+ shard \d \(task \d\)): started/g)]
    .map((m) => m[1]!)
    .filter((shard) => !first.output().includes(`${shard}: done`));
  expect(unfinished.length).toBeGreaterThan(0);
  for (const shard of unfinished) expect(second.output()).toContain(`${shard}: done: 3 unrolls`);
  await second.line(/epoch 2 episode 6 shard 1 \(task 1\): done: 3 unrolls/);
  await stop(second);
  expect(second.output()).toMatch(/worker: stopping after the current truncation\n$/);
});

it('a truncation that outlasts --lock-seconds stays with its worker: no shard is computed twice', async () => {
  // Each shard's truncation (the tape on 20,000 coordinates, 10 steps) keeps its worker's thread busy for about
  // a second, twice the lock; before the queue thread renewed the locks, the other worker's stall check handed
  // the shard over and both computed it.
  const slow = { ...experiment, optimizee: { type: 'quadratic', options: { dims: 10, batch: 2000 } }, training: { ...experiment.training, epochs: 1, episodesPerEpoch: 1, steps: 20, unroll: 10, kernel: 'tfjs' } };
  fs.writeFileSync(path.join(root, 'slow.json'), JSON.stringify(slow));
  expect(runSync(['train', 'slow.json', '--out', 'slow-local'], 300_000).status).toBe(0);
  const workers = [0, 1].map(() => l2l(['worker', '--redis', redis.url, '--queue', 'slow', '--lock-seconds', '0.5']));
  for (const w of workers) await w.line(/waiting for shards/);
  const learner = l2l(['train', 'slow.json', '--out', 'slow-remote', '--redis', redis.url, '--queue', 'slow']);
  expect(await learner.exit).toBe(0);
  expect(Buffer.compare(weights('slow-remote'), weights('slow-local'))).toBe(0);
  for (const w of workers) await w.line(/: done: 2 unrolls\n/);
  for (const w of workers) await stop(w);
  const lines = workers.flatMap((w) => w.output().split('\n')).filter((l) => l.startsWith('run '));
  expect(lines.filter((l) => l.endsWith(': started')).map((l) => l.replace(/^run \w+ /, '')).sort()).toEqual(['epoch 1 episode 1 shard 0 (task 0): started', 'epoch 1 episode 1 shard 1 (task 1): started']);
  expect(lines.filter((l) => !l.endsWith(': started')).map((l) => l.replace(/^.*: /, ''))).toEqual(['2 unrolls', '2 unrolls']);
}, 300_000);

it('l2l worker and l2l train --redis refuse a Redis they cannot reach, and --shards without --redis, in one line', () => {
  const run = (args: string[]) => runSync(args, 30_000);
  const worker = run(['worker', '--redis', 'redis://127.0.0.1:1']);
  expect(worker.status).toBe(1);
  expect(worker.stderr).toBe('cannot reach Redis at redis://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n');
  const train = run(['train', 'exp.json', '--out', 'nowhere', '--redis', 'http://127.0.0.1:1']);
  expect(train.status).toBe(1);
  expect(train.stderr).toBe('--redis: "http://127.0.0.1:1" is not a redis:// or rediss:// URL\n');
  const shards = run(['train', 'exp.json', '--out', 'nowhere', '--shards', '2']);
  expect(shards.status).toBe(1);
  expect(shards.stderr).toBe('--shards needs --redis (the Redis the workers listen on)\n');
});

it("a worker loads the plugins a run's experiment lists only with --trust-plugins", async () => {
  const plain = l2l(['worker', '--redis', redis.url, '--concurrency', '2', '--queue', 'plugins']);
  await plain.line(/waiting for shards/);
  const refused = runSync(['train', 'plugin.json', '--out', 'refused', '--redis', redis.url, '--queue', 'plugins'], 60_000);
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(
    /^distributed: shard [01] of epoch 1, episode 1 failed on a worker: the run's experiment lists plugins \(l2l-plugin-rosenbrock\): this worker loads plugins only with --trust-plugins \(plugins are code, chosen by whoever writes to the Redis\)\n$/,
  );
  await stop(plain);
  const trusting = l2l(['worker', '--redis', redis.url, '--concurrency', '2', '--queue', 'plugins', '--trust-plugins']);
  await trusting.line(/waiting for shards/);
  const local = runSync(['train', 'plugin.json', '--out', 'plugin-local'], 60_000);
  expect(local.status).toBe(0);
  const remote = runSync(['train', 'plugin.json', '--out', 'plugin-remote', '--redis', redis.url, '--queue', 'plugins'], 60_000);
  expect(remote.stderr).toBe('');
  expect(remote.status).toBe(0);
  expect(Buffer.compare(weights('plugin-remote'), weights('plugin-local'))).toBe(0);
  // The last shard ends when it sees the episode over, which may be after the learner has exited.
  await trusting.line(/epoch 1 episode 2 shard 1 \(task 1\): done: 3 unrolls/);
  await stop(trusting);
});

it('the learner killed with -9 mid-run: --resume with --redis ends as the run in one process, bit for bit', async () => {
  localRun();
  const worker = l2l(['worker', '--redis', redis.url, '--concurrency', '2', '--queue', 'resume']);
  await worker.line(/waiting for shards/);
  const first = l2l(['train', 'exp.json', '--out', 'resumed', '--redis', redis.url, '--queue', 'resume']);
  await first.line(/epoch 1\/2/); // epoch 1's checkpoint is written
  await worker.line(/epoch 2 episode 2 shard \d \(task \d\): started/);
  first.child.kill('SIGKILL');
  await first.exit;
  // The worker lets go of the dead learner's shards once its heartbeat is gone; the new run waits for that.
  const resumed = runSync(['train', 'exp.json', '--out', 'resumed', '--resume', '--redis', redis.url, '--queue', 'resume'], 120_000);
  expect(resumed.status).toBe(0);
  expect(resumed.stdout).toMatch(/epochs 2\.\.2/);
  expect(Buffer.compare(weights('resumed'), weights('local'))).toBe(0);
  // (Read after spawnSync, which held this process's event loop: wait for the lines to arrive.)
  // (Episode 2's shards, or the next episode's if the kill landed after episode 2 ended.)
  await worker.line(/epoch 2 episode [23] shard \d \(task \d\): failed: the learner of run [0-9a-f-]+ is gone \(no heartbeat\)/);
  await worker.line(/epoch 2 episode 6 shard 1 \(task 1\): done: 3 unrolls/);
  await stop(worker);
});

it('l2l eval --redis: the tuning and evaluation runs on workers give the results.json of l2l eval in one process', async () => {
  localRun();
  const evalArgs = ['eval', 'exp.json', '--optimizer', 'local', '--steps', '30', '--tasks', '6'];
  const here = runSync([...evalArgs, '--out', 'eval-here'], 300_000);
  expect(here.status).toBe(0);
  const workers = [l2l(['worker', '--redis', redis.url, '--queue', 'eval']), l2l(['worker', '--redis', redis.url, '--queue', 'eval'])];
  for (const w of workers) await w.line(/waiting for shards and runs/);
  const there = l2l([...evalArgs, '--out', 'eval-there', '--redis', redis.url, '--queue', 'eval']);
  expect(await there.exit).toBe(0);
  expect(there.output()).toMatch(/runs on workers: one BullMQ job per run over redis:\/\/127\.0\.0\.1:\d+, queue "eval"/);
  const read = (dir: string) => JSON.parse(fs.readFileSync(path.join(root, dir, 'results.json'), 'utf8'), (k, v) => (k === 'seconds' ? undefined : v));
  expect(read('eval-there')).toEqual(read('eval-here'));
  // Both workers took runs.
  for (const w of workers) {
    await w.line(/evaluation runs/);
    await stop(w);
  }
});

it('l2l report --train --redis trains and evaluates on workers: the checkpoint and results of a report in one process', async () => {
  const toy = {
    name: 'toy',
    backend: 'wasm',
    seed: 3,
    optimizee: { type: 'quadratic', options: { dims: 3, batch: 2 } },
    metaOptimizer: { type: 'lstm', options: { hidden: 4 } },
    training: { epochs: 1, episodesPerEpoch: 2, steps: 6, unroll: 3, validateEvery: 1, validationTasks: 2 },
    evaluation: { steps: 5, tasks: 3, baselines: [{ type: 'sgd' }, { type: 'adam' }], tuning: { learningRates: [0.01, 0.1, 1], tasks: 2 } },
  };
  fs.writeFileSync(path.join(root, 'toy.json'), JSON.stringify(toy));
  for (const n of ['here', 'there']) {
    const spec = { title: 'Toy', description: 'Tiny.', checkpoint: { dir: `runs/toy-${n}`, config: 'toy.json' }, results: `runs/report-${n}`, out: `docs-${n}`, tasks: 3, evaluations: [{ name: 'toy', title: 'Toy', config: 'toy.json' }] };
    fs.writeFileSync(path.join(root, `report-${n}.json`), JSON.stringify(spec));
  }
  const here = runSync(['report', 'report-here.json', '--train'], 300_000);
  expect(here.status).toBe(0);
  const worker = l2l(['worker', '--redis', redis.url, '--queue', 'report']);
  await worker.line(/waiting for shards and runs/);
  const there = l2l(['report', 'report-there.json', '--train', '--redis', redis.url, '--queue', 'report']);
  expect(await there.exit).toBe(0);
  expect(Buffer.compare(fs.readFileSync(path.join(root, 'runs/toy-there/latest/weights.bin')), fs.readFileSync(path.join(root, 'runs/toy-here/latest/weights.bin')))).toBe(0);
  const results = (n: string) => JSON.parse(fs.readFileSync(path.join(root, `runs/report-${n}/toy/results.json`), 'utf8'), (k, v) => (k === 'seconds' ? undefined : v));
  expect(results('there')).toEqual(results('here'));
  await worker.line(/evaluation runs/);
  await stop(worker);
});

it('l2l train --redis --async: a worker killed with -9 mid-run, training goes on with the other to the end; its flags need --redis and --async', async () => {
  const workers = [l2l(['worker', '--redis', redis.url, '--queue', 'async']), l2l(['worker', '--redis', redis.url, '--queue', 'async'])];
  for (const w of workers) await w.line(/waiting for shards and runs/);
  const learner = l2l(['train', 'exp.json', '--out', 'async', '--redis', redis.url, '--queue', 'async', '--async', '--staleness', '1']);
  await learner.line(/epoch 1\/2/);
  workers[0]!.child.kill('SIGKILL');
  await workers[0]!.exit;
  expect(await learner.exit).toBe(0);
  expect(learner.output()).toMatch(/asynchronous: 2 population jobs on workers, 1 estimate per outer step, staleness ≤ 1, over redis:\/\/127\.0\.0\.1:\d+, queue "async" \(not reproducible bit for bit\)/);
  expect(learner.output()).toMatch(/done: 2 epochs; best validation [0-9.e+-]+ at epoch \d/);
  await stop(workers[1]!);
  expect(runSync(['train', 'exp.json', '--out', 'x', '--async'], 30_000).stderr).toBe('--async needs --redis (the Redis the workers listen on)\n');
  expect(runSync(['train', 'exp.json', '--out', 'x', '--redis', redis.url, '--staleness', '2'], 30_000).stderr).toBe('--staleness and --gradients-per-step need --async\n');
});
