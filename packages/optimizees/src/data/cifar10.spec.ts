import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CIFAR10_PIXELS, CIFAR10_RECORD, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, encodeCifar10Batch, parseCifar10Batch, readCifar10Batch, writeCifar10Dir } from './cifar10';
import { clearImageDatasetCache, loadImageDataset } from './datasets';
import { userError } from '../spec-helpers';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-cifar10-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(() => clearImageDatasetCache());


/** `count` HWC images whose bytes encode (image, pixel, channel), and labels `(first + i) % 10`. */
function records(count: number, first: number): { pixels: Uint8Array; labels: Uint8Array } {
  const pixels = new Uint8Array(count * CIFAR10_PIXELS);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + first) % 251;
  return { pixels, labels: Uint8Array.from({ length: count }, (_, i) => (first + i) % 10) };
}

describe('CIFAR-10 binary reader', () => {
  it('reads the channel-major record layout into HWC pixels (checked byte by byte on a hand-made record)', () => {
    // One record: label 7, red plane all 10, green plane = pixel index mod 256, blue plane 200.
    const bytes = new Uint8Array(CIFAR10_RECORD);
    bytes[0] = 7;
    for (let p = 0; p < 1024; p++) {
      bytes[1 + p] = 10;
      bytes[1 + 1024 + p] = p % 256;
      bytes[1 + 2048 + p] = 200;
    }
    const r = parseCifar10Batch(bytes, 'one.bin');
    expect(r.count).toBe(1);
    expect(Array.from(r.labels)).toEqual([7]);
    // Pixel (row 1, col 2) is index 34: [red, green, blue] = [10, 34, 200].
    expect(Array.from(r.pixels.subarray(34 * 3, 35 * 3))).toEqual([10, 34, 200]);
    expect(Array.from(r.pixels.subarray(300 * 3, 301 * 3))).toEqual([10, 300 % 256, 200]);
    expect(encodeCifar10Batch(r)).toEqual(bytes);
  });

  it('round-trips a directory through loadImageDataset: five training files concatenated in order, the test file apart', () => {
    const dir = path.join(root, 'ok');
    const train = [0, 1, 2, 3, 4].map((f) => records(2 + f, 10 * f));
    const test = records(3, 99);
    writeCifar10Dir(dir, { train, test });
    const data = loadImageDataset({ dataset: 'cifar10', path: dir });
    expect([data.rows, data.cols, data.channels, data.features, data.classes]).toEqual([32, 32, 3, 3072, 10]);
    expect(data.train.count).toBe(2 + 3 + 4 + 5 + 6);
    expect(data.test.count).toBe(3);
    expect(Array.from(data.train.labels)).toEqual(train.flatMap((t) => Array.from(t.labels)));
    expect(data.train.pixels.subarray(2 * CIFAR10_PIXELS, 5 * CIFAR10_PIXELS)).toEqual(train[1]!.pixels);
    expect(data.test.pixels).toEqual(test.pixels);
    expect(loadImageDataset({ dataset: 'cifar10', path: dir })).toBe(data);
  });

  it('names the file for a truncated file, a wrong record size, a bad label, an empty file and a missing file', () => {
    const good = encodeCifar10Batch(records(3, 0));
    const file = path.join(root, 'bad.bin');

    fs.writeFileSync(file, good.subarray(0, good.length - 100));
    expect(userError(() => readCifar10Batch(file)).message).toMatch(new RegExp(`^${file}: ${good.length - 100} bytes is not a whole number of CIFAR-10 records \\(3073 bytes`));

    // CIFAR-100's binary records carry two label bytes: 3,074 bytes each.
    fs.writeFileSync(file, new Uint8Array(2 * (CIFAR10_RECORD + 1)));
    expect(userError(() => readCifar10Batch(file)).message).toMatch(/bad\.bin: 6148 bytes is not a whole number.*CIFAR-100 records are 3074 bytes/);

    const badLabel = good.slice();
    badLabel[CIFAR10_RECORD] = 12;
    fs.writeFileSync(file, badLabel);
    expect(userError(() => readCifar10Batch(file)).message).toMatch(/bad\.bin: record 1 \(byte 3073\) has label 12; CIFAR-10 labels are 0–9/);

    fs.writeFileSync(file, new Uint8Array(0));
    expect(userError(() => readCifar10Batch(file)).message).toMatch(/bad\.bin: empty file/);

    expect(userError(() => readCifar10Batch(path.join(root, 'nope.bin'))).message).toMatch(/nope\.bin: no such file; download CIFAR-10 with `l2l data download cifar10/);
  });

  it('loading a directory with one file missing or broken names that file', () => {
    const dir = path.join(root, 'partial');
    writeCifar10Dir(dir, { train: [0, 1, 2, 3, 4].map((f) => records(1, f)), test: records(1, 5) });
    fs.rmSync(path.join(dir, CIFAR10_TRAIN_FILES[3]));
    expect(userError(() => loadImageDataset({ dataset: 'cifar10', path: dir })).message).toContain(path.join(dir, 'data_batch_4.bin'));
    writeCifar10Dir(dir, { train: [0, 1, 2, 3, 4].map((f) => records(1, f)), test: records(1, 5) });
    fs.appendFileSync(path.join(dir, CIFAR10_TEST_FILE), new Uint8Array(5));
    expect(userError(() => loadImageDataset({ dataset: 'cifar10', path: dir })).message).toContain(`${path.join(dir, 'test_batch.bin')}: 3078 bytes`);
  });

  it('dataset "cifar10" without a path is a UserError that says how to get it', () => {
    expect(userError(() => loadImageDataset({ dataset: 'cifar10' })).message).toMatch(/dataset "cifar10" needs `path`.*l2l data download cifar10/);
  });
});
