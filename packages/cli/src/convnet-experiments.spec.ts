import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar';
import { clearImageDatasetCache, CIFAR10_PIXELS, writeCifar10Dir } from '@l2l/optimizees';
import { main } from './main';

/** The convolutional experiments: they validate, `l2l list` shows their families, and cifar10.json runs end to end on a synthetic archive. */
const repo = path.resolve(__dirname, '..', '..', '..');

async function run(argv: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

let root: string;
afterAll(() => {
  clearImageDatasetCache();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('convolutional experiments', () => {
  it('cifar10.json, mnist-cnn(-groups, -lstm-adam).json and stn(-groups).json validate', async () => {
    const files = ['cifar10', 'mnist-cnn', 'mnist-cnn-groups', 'mnist-cnn-lstm-adam', 'stn', 'stn-groups'].map((f) => `experiments/${f}.json`);
    const r = await run(['validate', ...files], repo);
    // conv-net, stn and per-group give size estimates: the pre-flight sizes them from the config, without a warning.
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('l2l list shows conv-net and stn with their options', async () => {
    const r = await run(['list'], repo);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/conv-net +@l2l\/optimizees +Classify images with a convolutional network/);
    expect(r.stdout).toMatch(/defaults: layers=3, channels=16, kernelSize=5, padding="same", pooling="max", batchNorm=true, activation="relu", dense=\[32\]/);
    expect(r.stdout).toMatch(/stn +@l2l\/optimizees +Classify affine-distorted MNIST/);
    expect(r.stdout).toMatch(/canvas=42, maxRotation=45, minScale=0.7, maxScale=1.2/);
  });

  it('cifar10.json meta-trains the paper\'s network with its two LSTMs (conv / fc) on a synthetic CIFAR-10 archive fetched with `l2l data download` from 127.0.0.1', async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-cifar10-exp-'));
    // A small archive in the official layout: 5 × 24 training images, 24 test images.
    const src = path.join(root, 'src');
    const rnd = (n: number, seed: number) => ({
      pixels: Uint8Array.from({ length: n * CIFAR10_PIXELS }, (_, i) => (i * 31 + seed * 17) % 256),
      labels: Uint8Array.from({ length: n }, (_, i) => (i + seed) % 10),
    });
    writeCifar10Dir(path.join(src, 'cifar-10-batches-bin'), { train: [1, 2, 3, 4, 5].map((s) => rnd(24, s)), test: rnd(24, 6) });
    const archive = path.join(root, 'cifar-10-binary.tar.gz');
    await tar.c({ gzip: true, file: archive, cwd: src }, ['cifar-10-batches-bin']);
    const body = fs.readFileSync(archive);
    const server = http.createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cifar-10-binary.tar.gz`;
      const md5 = createHash('md5').update(body).digest('hex');
      // The layout the experiment expects: <root>/experiments/cifar10.json reads ../data/cifar-10-batches-bin.
      const dl = await run(['data', 'download', 'cifar10', '--dir', 'data', '--url', url, '--md5', md5], root);
      expect(dl.code).toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    const exp = JSON.parse(fs.readFileSync(path.join(repo, 'experiments', 'cifar10.json'), 'utf8'));
    expect(exp.optimizee).toEqual({
      type: 'conv-net',
      options: expect.objectContaining({ dataset: 'cifar10', path: '../data/cifar-10-batches-bin', layers: 3, channels: 16, kernelSize: 5, batchNorm: true, dense: [32], initScale: 0.01, batchSize: 128 }),
    });
    // The paper's network as configured; only the sizes of the run shrink (minibatches, steps, epochs, tasks).
    exp.backend = 'wasm';
    exp.optimizee.options.batchSize = 8;
    exp.training = { ...exp.training, epochs: 1, episodesPerEpoch: 1, steps: 4, unroll: 2, validationTasks: 1 };
    fs.mkdirSync(path.join(root, 'experiments'));
    fs.writeFileSync(path.join(root, 'experiments', 'cifar10.json'), JSON.stringify(exp));
    const r = await run(['train', 'experiments/cifar10.json', '--out', 'run'], root);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/epoch 1\/1 {2}meta-loss [0-9.e+-]+/);
    // The paper's two LSTMs, one for the conv kernels and one for the rest, each on its fused kernel.
    expect(exp.metaOptimizer).toEqual({ type: 'per-group', options: { groups: { conv: expect.objectContaining({ type: 'lstm' }), fc: expect.objectContaining({ type: 'lstm' }) } } });
    expect(r.stdout).toMatch(/meta-training per-group on conv-net/);
    expect(r.stdout).toMatch(/meta-gradients: fused kernel, per group \(conv, fc\)/);
    expect(fs.readdirSync(path.join(root, 'run')).sort()).toEqual(['.l2l-output', 'best', 'experiment.json', 'latest', 'log.csv']);
  });
});
