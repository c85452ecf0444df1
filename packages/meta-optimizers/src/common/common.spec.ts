import * as tf from '@tensorflow/tfjs-core';
import { Rng, useBackend } from '@l2l/core';
import { affine } from './affine';
import { fastTanh } from './activations';
import { checkLayout, coordinateLayout, flattenCoordinates, unflattenCoordinates } from './coordinates';
import { matMulFast } from './fast-matmul';
import { lstmCell, lstmCellPacked } from './lstm-cell';
import { preprocessGradients } from './preprocess';
import { rowSlice, splitRows } from './row-slice';
import { NamedVariables, initKernelWithBias } from './weights';

function rand(rng: Rng, shape: number[], std = 1): tf.Tensor {
  return tf.tensor(rng.normals(shape.reduce((a, b) => a * b, 1), 0, std), shape);
}

function expectClose(actual: tf.Tensor, expected: tf.Tensor | number[], tol = 1e-5): void {
  const a = Array.from(actual.dataSync());
  const e = expected instanceof tf.Tensor ? Array.from(expected.dataSync()) : expected;
  if (expected instanceof tf.Tensor) expect(actual.shape).toEqual(expected.shape);
  expect(a.length).toBe(e.length);
  const scale = Math.max(1, ...e.map(Math.abs));
  const worst = Math.max(0, ...a.map((v, i) => Math.abs(v - e[i]!)));
  if (!(worst <= tol * scale)) throw new Error(`max difference ${worst} > ${tol * scale}\nactual:   ${a.slice(0, 12)}\nexpected: ${e.slice(0, 12)}`);
}

/** The LSTM cell from plain taped tf ops: the reference for `lstmCellPacked`'s hand-written gradient. */
function referenceCell(kernel: tf.Tensor2D, x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor2D {
  const z = tf.concat([x, h, tf.ones([1, x.shape[1]])], 0);
  const [ai, af, ag, ao] = tf.split(tf.matMul(kernel, z), 4, 0);
  const c2 = tf.add(tf.mul(tf.sigmoid(af!), c), tf.mul(tf.sigmoid(ai!), tf.tanh(ag!)));
  const h2 = tf.mul(tf.sigmoid(ao!), tf.tanh(c2));
  return tf.concat([h2, c2], 0) as tf.Tensor2D;
}

describe.each(['wasm', 'cpu'] as const)('common pieces on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  describe('preprocessGradients', () => {
    const k = 10;
    const t = Math.fround(Math.exp(-k)); // the threshold as float32 stores it
    const g = [0, 1e-5, -1e-5, t, -t, 1, -2, 0.5, 1e-30];
    it('logAndSign gives (log|g|/k, sign g) at and above e^-k, (-1, e^k g) below, (-1, 0) at 0', () => {
      tf.tidy(() => {
        const out = preprocessGradients(tf.tensor2d([g]), 'logAndSign', k);
        expect(out.shape).toEqual([2, g.length]);
        const ek = Math.exp(k);
        expectClose(tf.slice(out, [0, 0], [1, g.length]), [-1, -1, -1, Math.log(t) / k, Math.log(t) / k, 0, Math.log(2) / k, Math.log(0.5) / k, -1], 1e-6);
        expectClose(tf.slice(out, [1, 0], [1, g.length]), [0, 1e-5 * ek, -1e-5 * ek, 1, -1, 1, -1, 1, 1e-30 * ek], 1e-6);
      });
    });
    it('logAndSign is continuous across the threshold', () => {
      tf.tidy(() => {
        const below = Math.fround(t * (1 - 1e-6));
        const out = preprocessGradients(tf.tensor2d([[below, t]]), 'logAndSign', k).arraySync();
        expect(out[0]![0]).toBeCloseTo(out[0]![1]!, 5);
        expect(out[1]![0]).toBeCloseTo(out[1]![1]!, 5);
      });
    });
    it('uses k: k = 5 moves the threshold to e^-5', () => {
      tf.tidy(() => {
        const out = preprocessGradients(tf.tensor2d([[1e-3, 1e-2]]), 'logAndSign', 5).arraySync();
        // e^-5 ≈ 6.7e-3: 1e-3 is below, 1e-2 above.
        expect(out[0]![0]).toBeCloseTo(-1, 6);
        expect(out[1]![0]).toBeCloseTo(1e-3 * Math.exp(5), 5);
        expect(out[0]![1]).toBeCloseTo(Math.log(1e-2) / 5, 6);
        expect(out[1]![1]).toBeCloseTo(1, 6);
      });
    });
    it('none passes the gradient through', () => {
      tf.tidy(() => expectClose(preprocessGradients(tf.tensor2d([g]), 'none'), Array.from(Float32Array.from(g)), 0));
    });
  });

  it('matMulFast has the value and gradients of tf.matMul', () => {
    tf.tidy(() => {
      const rng = new Rng(1);
      const a = rand(rng, [5, 7]) as tf.Tensor2D;
      const b = rand(rng, [7, 9]) as tf.Tensor2D;
      const w = rand(rng, [5, 9]);
      type MatMul = (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor;
      const loss = (f: MatMul) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor2D, y as tf.Tensor2D), w));
      const mine = tf.grads(loss((x, y) => matMulFast(x as tf.Tensor2D, y as tf.Tensor2D)))([a, b]);
      const theirs = tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b]);
      expectClose(matMulFast(a, b), tf.matMul(a, b), 1e-6);
      expectClose(mine[0]!, theirs[0]!, 1e-5);
      expectClose(mine[1]!, theirs[1]!, 1e-5);
    });
  });

  it('affine computes W·[x; 1] with the gradients of plain ops', () => {
    tf.tidy(() => {
      const rng = new Rng(2);
      const kernel = rand(rng, [3, 5]) as tf.Tensor2D;
      const x = rand(rng, [4, 6]) as tf.Tensor2D;
      const w = rand(rng, [3, 6]);
      const ref = (k: tf.Tensor, y: tf.Tensor) => tf.matMul(k as tf.Tensor2D, tf.concat([y, tf.ones([1, 6])], 0) as tf.Tensor2D);
      expectClose(affine(kernel, x), ref(kernel, x), 1e-6);
      const mine = tf.grads((k: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(affine(k as tf.Tensor2D, y as tf.Tensor2D), w)))([kernel, x]);
      const theirs = tf.grads((k: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(ref(k, y), w)))([kernel, x]);
      expectClose(mine[0]!, theirs[0]!, 1e-5);
      expectClose(mine[1]!, theirs[1]!, 1e-5);
    });
  });

  it('lstmCellPacked matches the cell built from plain ops, value and all four gradients', () => {
    tf.tidy(() => {
      const rng = new Rng(3);
      const [hidden, inputs, n] = [4, 3, 7];
      const kernel = rand(rng, [4 * hidden, inputs + hidden + 1], 0.7) as tf.Tensor2D;
      const x = rand(rng, [inputs, n]) as tf.Tensor2D;
      const h = rand(rng, [hidden, n], 0.5) as tf.Tensor2D;
      const c = rand(rng, [hidden, n], 2) as tf.Tensor2D;
      const w = rand(rng, [2 * hidden, n]);
      expectClose(lstmCellPacked(kernel, x, h, c), referenceCell(kernel, x, h, c), 1e-5);
      type Cell = (k: tf.Tensor2D, x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D) => tf.Tensor2D;
      const lossOf = (cell: Cell) => (...t: tf.Tensor[]) => tf.sum(tf.mul(cell(...(t as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D])), w));
      const mine = tf.grads(lossOf(lstmCellPacked))([kernel, x, h, c]);
      const theirs = tf.grads(lossOf(referenceCell))([kernel, x, h, c]);
      ['kernel', 'x', 'h', 'c'].forEach((_, i) => expectClose(mine[i]!, theirs[i]!, 2e-5));
    });
  });

  it('lstmCell splits h and c, and gradients flow through either', () => {
    tf.tidy(() => {
      const rng = new Rng(4);
      const kernel = rand(rng, [8, 6]) as tf.Tensor2D;
      const [x, h, c] = [rand(rng, [3, 5]), rand(rng, [2, 5]), rand(rng, [2, 5])] as tf.Tensor2D[];
      const out = lstmCell(kernel, x!, h!, c!);
      const packed = referenceCell(kernel, x!, h!, c!);
      expectClose(out.h, tf.slice(packed, [0, 0], [2, 5]), 1e-5);
      expectClose(out.c, tf.slice(packed, [2, 0], [2, 5]), 1e-5);
      const g = tf.grad((k: tf.Tensor) => {
        const o = lstmCell(k as tf.Tensor2D, x!, h!, c!);
        return tf.add(tf.sum(o.h), tf.mul(tf.sum(o.c), 3));
      })(kernel);
      const ref = tf.grad((k: tf.Tensor) => {
        const p = referenceCell(k as tf.Tensor2D, x!, h!, c!);
        return tf.add(tf.sum(tf.slice(p, [0, 0], [2, 5])), tf.mul(tf.sum(tf.slice(p, [2, 0], [2, 5])), 3));
      })(kernel);
      expectClose(g, ref, 1e-5);
    });
  });

  it('fastTanh agrees with tf.tanh', () => {
    tf.tidy(() => {
      const x = tf.linspace(-12, 12, 97);
      expectClose(fastTanh(x), tf.tanh(x), 3e-7);
    });
  });

  it('rowSlice and splitRows cut rows, with the gradient of tf.slice', () => {
    tf.tidy(() => {
      const rng = new Rng(5);
      const x = rand(rng, [6, 4, 2]);
      expectClose(rowSlice(x, 2, 3), tf.slice(x, [2, 0, 0], [3, 4, 2]), 0);
      expect(rowSlice(x, 6, 0).shape).toEqual([0, 4, 2]);
      const parts = splitRows(x, [1, 2, 3]);
      expect(parts.map((p) => p.shape[0])).toEqual([1, 2, 3]);
      expectClose(tf.concat(parts, 0), x, 0);
      const w = rand(rng, [3, 4, 2]);
      const g = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(rowSlice(y, 2, 3), w)))(x);
      const ref = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(tf.slice(y, [2, 0, 0], [3, 4, 2]), w)))(x);
      expectClose(g, ref, 0);
      expect(() => rowSlice(x, 4, 3)).toThrow(/out of range/);
      expect(() => splitRows(x, [1, 2])).toThrow(/add up to 3/);
    });
  });
});

describe('coordinate layout', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('flattens named tensors onto one row and back, in key order', () => {
    tf.tidy(() => {
      const tensors = { w: tf.tensor2d([[1, 2, 3], [4, 5, 6]]), s: tf.scalar(7), b: tf.tensor1d([8, 9]) };
      const layout = coordinateLayout(tensors);
      expect(layout).toEqual({ names: ['w', 's', 'b'], shapes: [[2, 3], [], [2]], sizes: [6, 1, 2], offsets: [0, 6, 7], total: 9 });
      const row = flattenCoordinates(tensors, layout);
      expect(row.shape).toEqual([1, 9]);
      expectClose(row, [1, 2, 3, 4, 5, 6, 7, 8, 9], 0);
      // Key order of the input does not matter: the layout decides.
      const reordered = flattenCoordinates({ b: tensors.b, s: tensors.s, w: tensors.w }, layout);
      expectClose(reordered, [1, 2, 3, 4, 5, 6, 7, 8, 9], 0);
      const back = unflattenCoordinates(row, layout);
      expect(Object.keys(back)).toEqual(['w', 's', 'b']);
      for (const name of layout.names) expectClose(back[name]!, tensors[name as keyof typeof tensors], 0);
    });
  });

  it('checkLayout names missing, unexpected and misshapen tensors', () => {
    tf.tidy(() => {
      const layout = coordinateLayout({ w: tf.zeros([2, 3]), b: tf.zeros([3]) });
      expect(() => checkLayout(layout, { w: tf.zeros([2, 3]) }, 'grads')).toThrow(/grads.*missing "b"/);
      expect(() => checkLayout(layout, { w: tf.zeros([2, 3]), b: tf.zeros([3]), v: tf.zeros([1]) }, 'grads')).toThrow(/unexpected "v"/);
      expect(() => checkLayout(layout, { w: tf.zeros([3, 2]), b: tf.zeros([3]) }, 'grads')).toThrow(/"w" has shape \[3, 2\], expected \[2, 3\]/);
      expect(() => checkLayout(layout, { b: tf.zeros([3]), w: tf.zeros([2, 3]) }, 'grads')).not.toThrow();
      expect(() => coordinateLayout({})).toThrow(/at least one/);
    });
  });
});

describe('NamedVariables', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('gets copies, sets by exact name and shape, and refuses anything else without changing a weight', () => {
    const vars = new NamedVariables({ 'a/kernel': tf.ones([2, 3]), 'b/kernel': tf.zeros([1, 4]) }, 'test');
    try {
      const copy = vars.getWeights();
      expect(copy['a/kernel']).not.toBe(vars.variables['a/kernel']);
      copy['a/kernel']!.dispose();
      expect(vars.variables['a/kernel']!.isDisposed).toBe(false);
      copy['b/kernel']!.dispose();

      const good = { 'a/kernel': tf.fill([2, 3], 2), 'b/kernel': tf.fill([1, 4], 3) };
      vars.setWeights(good);
      good['a/kernel'].dispose(); // the caller keeps (and may dispose) what it passed
      expectClose(vars.variables['a/kernel']!, [2, 2, 2, 2, 2, 2], 0);

      const bad = [
        [{ 'a/kernel': tf.zeros([2, 3]) }, /missing weight "b\/kernel"/],
        [{ 'a/kernel': tf.zeros([2, 3]), 'b/kernel': tf.zeros([1, 4]), extra: tf.zeros([1]) }, /unknown weight "extra"/],
        [{ 'a/kernel': tf.zeros([3, 2]), 'b/kernel': tf.zeros([1, 4]) }, /weight "a\/kernel" has shape \[3, 2\], expected \[2, 3\]/],
        [{ 'a/kernel': tf.zeros([2, 3], 'int32'), 'b/kernel': tf.zeros([1, 4]) }, /"a\/kernel" has dtype int32/],
      ] as const;
      for (const [weights, message] of bad) {
        expect(() => vars.setWeights(weights as unknown as Record<string, tf.Tensor>)).toThrow(message);
        tf.dispose(Object.values(weights));
      }
      expectClose(vars.variables['b/kernel']!, [3, 3, 3, 3], 0);
      good['b/kernel'].dispose();
      // The variables themselves are acceptable weights (a no-op).
      vars.setWeights({ ...vars.variables });
      expectClose(vars.variables['b/kernel']!, [3, 3, 3, 3], 0);
    } finally {
      vars.dispose();
    }
    expect(() => vars.variables).toThrow(/after dispose/);
  });

  it('initKernelWithBias is deterministic per seed and label, with the bias in the last column', () => {
    const a = initKernelWithBias(7, 'x', 3, 4, 1, (r) => r * 10);
    const b = initKernelWithBias(7, 'x', 3, 4, 1, (r) => r * 10);
    const c = initKernelWithBias(8, 'x', 3, 4, 1);
    const d = initKernelWithBias(7, 'y', 3, 4, 1);
    expect(a.shape).toEqual([3, 5]);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(d.dataSync()));
    const rows = a.arraySync();
    expect(rows.map((r) => r[4])).toEqual([0, 10, 20]);
    // Truncated at two standard deviations of 1/sqrt(4).
    for (const r of rows) for (const v of r.slice(0, 4)) expect(Math.abs(v)).toBeLessThanOrEqual(1);
    tf.dispose([a, b, c, d]);
  });
});
