import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar';
import { CIFAR10_PIXELS, clearImageDatasetCache, loadImageDataset, writeCifar10Dir } from '@l2l/optimizees';
import { main } from '../main';

/** `l2l data download` against a server on 127.0.0.1 that serves small archives made here. */
async function run(argv: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { cwd, stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

let root: string;
let server: http.Server;
let base: string;
const archives: Record<string, Buffer> = {};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A gzipped tarball of a CIFAR-10-shaped directory with `perFile` images per file; `damage` breaks it after writing. */
async function makeArchive(name: string, perFile: number, damage?: (dir: string) => void): Promise<Buffer> {
  const src = path.join(root, `src-${name}`);
  const dir = path.join(src, 'cifar-10-batches-bin');
  const records = (n: number, first: number) => ({
    pixels: Uint8Array.from({ length: n * CIFAR10_PIXELS }, (_, i) => (i + first) % 256),
    labels: Uint8Array.from({ length: n }, (_, i) => (i + first) % 10),
  });
  writeCifar10Dir(dir, { train: [0, 1, 2, 3, 4].map((f) => records(perFile, f)), test: records(perFile, 9) });
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'airplane\nautomobile\n');
  damage?.(dir);
  const file = path.join(root, `${name}.tar.gz`);
  await tar.c({ gzip: true, file, cwd: src }, ['cifar-10-batches-bin']);
  return fs.readFileSync(file);
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-cli-data-'));
  archives.good = await makeArchive('good', 3);
  archives.broken = await makeArchive('broken', 2, (dir) => fs.truncateSync(path.join(dir, 'data_batch_3.bin'), 100));
  archives.empty = await (async () => {
    fs.mkdirSync(path.join(root, 'src-empty', 'other'), { recursive: true });
    fs.writeFileSync(path.join(root, 'src-empty', 'other', 'x.txt'), 'x');
    const file = path.join(root, 'empty.tar.gz');
    await tar.c({ gzip: true, file, cwd: path.join(root, 'src-empty') }, ['other']);
    return fs.readFileSync(file);
  })();
  server = http.createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\//, '').replace(/\.tar\.gz$/, '');
    if (name === 'cut') {
      // Announces the whole archive, sends half of it, then drops the connection.
      const body = archives.good!;
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    const body = archives[name];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(root, { recursive: true, force: true });
  clearImageDatasetCache();
});

function fresh(name: string): string {
  const dir = path.join(root, 'out', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

describe('l2l data download cifar10', () => {
  it('downloads, verifies the MD5, unpacks into <dir>/cifar-10-batches-bin, leaves nothing else, and a second run finds it', async () => {
    const cwd = fresh('ok');
    const r = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/good.tar.gz`, '--md5', md5(archives.good!)], cwd);
    expect(r.stderr).toContain(`downloading ${base}/good.tar.gz`);
    expect(r.code).toBe(0);
    const target = path.join(cwd, 'd', 'cifar-10-batches-bin');
    expect(r.stdout).toContain(`cifar10: unpacked to ${target}`);
    expect(fs.readdirSync(path.join(cwd, 'd'))).toEqual(['cifar-10-batches-bin']);
    const data = loadImageDataset({ dataset: 'cifar10', path: target });
    expect([data.train.count, data.test.count]).toEqual([15, 3]);
    const again = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/good.tar.gz`, '--md5', md5(archives.good!)], cwd);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`cifar10: already in ${target}`);
  });

  it('a checksum mismatch is an error naming the URL and leaves nothing behind', async () => {
    const cwd = fresh('md5');
    const r = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/good.tar.gz`, '--md5', '0'.repeat(32)], cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${base}/good.tar.gz: MD5 checksum mismatch (expected ${'0'.repeat(32)}, got ${md5(archives.good!)})`);
    expect(fs.readdirSync(path.join(cwd, 'd'))).toEqual([]);
  });

  it('without --md5 the published checksum is required, so a mirror serving another file is refused', async () => {
    const cwd = fresh('published');
    const r = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/good.tar.gz`], cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('MD5 checksum mismatch (expected c32a1d4ab5d03f1284b67883e8d87530');
  });

  it('an interrupted transfer is an error that says how far it got, and leaves nothing behind', async () => {
    const cwd = fresh('cut');
    const r = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/cut.tar.gz`, '--md5', md5(archives.good!)], cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${base}/cut.tar.gz: download interrupted after \\d+ of ${archives.good!.length} bytes`));
    expect(fs.readdirSync(path.join(cwd, 'd'))).toEqual([]);
  });

  it('an archive with a damaged file or without the data set directory is refused after extraction, leaving nothing', async () => {
    const cwd = fresh('broken');
    const r = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/broken.tar.gz`, '--md5', md5(archives.broken!)], cwd);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data_batch_3\.bin: 100 bytes is not a whole number of CIFAR-10 records/);
    expect(fs.readdirSync(path.join(cwd, 'd'))).toEqual([]);
    const e = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/empty.tar.gz`, '--md5', md5(archives.empty!)], cwd);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/holds no directory cifar-10-batches-bin\//);
    expect(fs.readdirSync(path.join(cwd, 'd'))).toEqual([]);
  });

  it('HTTP errors, unknown data sets, bad --md5 and a damaged existing copy are one-line errors', async () => {
    const cwd = fresh('errors');
    const missing = await run(['data', 'download', 'cifar10', '--dir', 'd', '--url', `${base}/missing.tar.gz`, '--md5', '0'.repeat(32)], cwd);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${base}/missing.tar.gz: download failed (HTTP 404`);
    const unknown = await run(['data', 'download', 'imagenet'], cwd);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown data set "imagenet"; one of cifar10/);
    const badMd5 = await run(['data', 'download', 'cifar10', '--md5', 'xyz'], cwd);
    expect(badMd5.code).toBe(1);
    expect(badMd5.stderr).toMatch(/--md5 must be 32 hex digits/);
    fs.mkdirSync(path.join(cwd, 'd', 'cifar-10-batches-bin'), { recursive: true });
    const damaged = await run(['data', 'download', 'cifar10', '--dir', 'd'], cwd);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(/cifar-10-batches-bin: exists but is incomplete or damaged \(.*data_batch_1\.bin: no such file/);
  });
});
