import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { isUserError } from '@l2l/core';
import { encodeIdx, readIdx, type IdxType } from './idx';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'l2l-idx-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, bytes: Uint8Array): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, bytes);
  return f;
}

/** The error `fn` throws; fails unless it is a UserError whose message names `f`. */
function userErrorNaming(f: string, fn: () => unknown): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(Error);
  expect(isUserError(caught)).toBe(true);
  expect((caught as Error).message).toContain(f);
  return caught as Error;
}

describe('readIdx', () => {
  const cases: Array<{ dtype: IdxType; data: number[] }> = [
    { dtype: 'uint8', data: [0, 1, 127, 128, 254, 255] },
    { dtype: 'int8', data: [-128, -1, 0, 1, 100, 127] },
    { dtype: 'int16', data: [-32768, -2, 0, 3, 258, 32767] },
    { dtype: 'int32', data: [-2147483648, -70000, 0, 1, 65536, 2147483647] },
    { dtype: 'float32', data: [-1.5, 0, 0.25, 3, 1e10, -2e-3] },
    { dtype: 'float64', data: [-1.5, 0, Math.PI, 1e300, -1e-300, 7] },
  ];
  for (const { dtype, data } of cases) {
    for (const gzip of [false, true]) {
      it(`reads ${gzip ? 'gzipped' : 'raw'} ${dtype} files with their dims and values`, () => {
        const f = file(`${dtype}${gzip ? '.gz' : ''}`, encodeIdx({ dtype, dims: [2, 3], data }, { gzip }));
        const got = readIdx(f);
        expect(got.dtype).toBe(dtype);
        expect(got.dims).toEqual([2, 3]);
        expect(got.data.length).toBe(6);
        const expected = dtype === 'float32' ? Array.from(Float32Array.from(data)) : data;
        expect(Array.from(got.data)).toEqual(expected);
      });
    }
  }

  it('lays out bytes as IDX specifies: magic 0 0 type ndims, big-endian dims and values', () => {
    const bytes = encodeIdx({ dtype: 'int16', dims: [1, 2], data: [258, -1] });
    expect(Array.from(bytes)).toEqual([0, 0, 0x0b, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xff]);
  });

  it('detects gzip by its magic bytes, not by the file name', () => {
    const array = { dtype: 'uint8' as const, dims: [3], data: [7, 8, 9] };
    const gzNoSuffix = file('gzipped-idx1-ubyte', encodeIdx(array, { gzip: true }));
    const rawWithSuffix = file('raw-idx1-ubyte.gz', encodeIdx(array));
    expect(Array.from(readIdx(gzNoSuffix).data)).toEqual([7, 8, 9]);
    expect(Array.from(readIdx(rawWithSuffix).data)).toEqual([7, 8, 9]);
  });

  it('reads a three-dimensional image file', () => {
    const data = Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const got = readIdx(file('images-idx3-ubyte.gz', encodeIdx({ dtype: 'uint8', dims: [2, 3, 4], data }, { gzip: true })));
    expect(got.dims).toEqual([2, 3, 4]);
    expect(Array.from(got.data)).toEqual(data);
  });

  describe('rejects bad files with a UserError that names the file', () => {
    const good = () => encodeIdx({ dtype: 'uint8', dims: [2, 2], data: [1, 2, 3, 4] });

    it('wrong magic number', () => {
      const bytes = good();
      bytes[0] = 0x12;
      const f = file('bad-magic', bytes);
      expect(userErrorNaming(f, () => readIdx(f)).message).toMatch(/magic number/);
      const f2 = file('bad-magic-2', Uint8Array.from([0, 3, 8, 1, 0, 0, 0, 1, 5]));
      expect(userErrorNaming(f2, () => readIdx(f2)).message).toMatch(/magic number/);
    });

    it('unknown type code', () => {
      const bytes = good();
      bytes[2] = 0x0a;
      const f = file('bad-type', bytes);
      expect(userErrorNaming(f, () => readIdx(f)).message).toMatch(/unknown data type code 0x0a/);
    });

    it('truncated data, and a truncated header', () => {
      const bytes = good();
      const f = file('truncated', bytes.subarray(0, bytes.length - 1));
      expect(userErrorNaming(f, () => readIdx(f)).message).toMatch(/truncated.*need 16 bytes, the file has 15/);
      const f2 = file('truncated-header', bytes.subarray(0, 7));
      expect(userErrorNaming(f2, () => readIdx(f2)).message).toMatch(/truncated/);
      const f3 = file('empty', new Uint8Array(0));
      expect(userErrorNaming(f3, () => readIdx(f3)).message).toMatch(/truncated/);
      const f4 = file('truncated.gz', zlib.gzipSync(bytes.subarray(0, 14)));
      expect(userErrorNaming(f4, () => readIdx(f4)).message).toMatch(/truncated/);
    });

    it('trailing bytes', () => {
      const f = file('trailing', Buffer.concat([good(), Buffer.from([0, 0, 0])]));
      expect(userErrorNaming(f, () => readIdx(f)).message).toMatch(/3 trailing bytes/);
    });

    it('corrupt or cut gzip data', () => {
      const gz = zlib.gzipSync(encodeIdx({ dtype: 'uint8', dims: [100], data: Array.from({ length: 100 }, (_, i) => i) }));
      const corrupt = Buffer.from(gz);
      for (let i = 10; i < corrupt.length - 8; i++) corrupt[i] = 0xff - corrupt[i]!;
      const f = file('corrupt.gz', corrupt);
      expect(userErrorNaming(f, () => readIdx(f)).message).toMatch(/gzip/);
      const f2 = file('cut.gz', gz.subarray(0, gz.length - 12));
      expect(userErrorNaming(f2, () => readIdx(f2)).message).toMatch(/gzip/);
    });

    it('missing file, and a directory', () => {
      const f = path.join(dir, 'no-such-file-idx1-ubyte');
      expect(userErrorNaming(f, () => readIdx(f)).message).toMatch(/no such file/);
      const d = path.join(dir, 'a-directory');
      fs.mkdirSync(d);
      expect(userErrorNaming(d, () => readIdx(d)).message).toMatch(/directory/);
    });
  });

  it('writer refuses data that does not fit the dims or the type', () => {
    expect(() => encodeIdx({ dtype: 'uint8', dims: [3], data: [1, 2] })).toThrow(/2 values, dims \[3\] need 3/);
    expect(() => encodeIdx({ dtype: 'uint8', dims: [1], data: [256] })).toThrow(/uint8 data must hold integers in \[0, 255\], got 256/);
    expect(() => encodeIdx({ dtype: 'int16', dims: [1], data: [0.5] })).toThrow(/integers/);
  });
});
