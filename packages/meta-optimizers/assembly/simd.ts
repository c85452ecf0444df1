// Vector math the fused kernels share (lstm-stack.ts, multiscale-mlp.ts): fused multiply-add where the build has
// relaxed SIMD, exp, and the reduction of lane-wise weight-gradient accumulators.

// acc + a·b, fused where the build has relaxed SIMD.
// @ts-ignore: decorator
@inline export function mac(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

// Constants in linear memory, each splatted to 4 lanes: a v128.const costs V8 several instructions per use.
// exp (Cephes expf): clamp, log2(e), round-to-nearest magic, −ln2 hi/lo, polynomial, 1, the i32 127.
const X: usize = memory.data<f32>([
  -87.0, -87.0, -87.0, -87.0,                                                                 //   0
  88.0, 88.0, 88.0, 88.0,                                                                     //  16
  1.44269504088896341, 1.44269504088896341, 1.44269504088896341, 1.44269504088896341,         //  32
  12582912.0, 12582912.0, 12582912.0, 12582912.0,                                             //  48
  -0.693359375, -0.693359375, -0.693359375, -0.693359375,                                     //  64
  2.12194440e-4, 2.12194440e-4, 2.12194440e-4, 2.12194440e-4,                                 //  80
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,                         //  96
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,                         // 112
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,                         // 128
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,                         // 144
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,                         // 160
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,                         // 176
  1.0, 1.0, 1.0, 1.0,                                                                         // 192
  1.7789e-43, 1.7789e-43, 1.7789e-43, 1.7789e-43,                                             // 208 the i32 127
], 16);

// @ts-ignore: decorator
@inline function XC(off: usize): v128 { return v128.load(X + off); }

// @ts-ignore: decorator
@inline export function vexp(x0: v128): v128 {
  const x = f32x4.pmin(f32x4.pmax(x0, XC(0)), XC(16));
  const t = mac(XC(48), x, XC(32)); // magic + x·log2(e): the integer n sits in the low mantissa bits
  const n = f32x4.sub(t, XC(48));
  let r = mac(x, n, XC(64));
  r = mac(r, n, XC(80));
  let p = mac(XC(112), XC(96), r);
  p = mac(XC(128), p, r);
  p = mac(XC(144), p, r);
  p = mac(XC(160), p, r);
  p = mac(XC(176), p, r);
  p = mac(f32x4.add(r, XC(192)), f32x4.mul(p, r), r);
  const e = i32x4.shl(i32x4.add(t, XC(208)), 23); // 2^n
  return f32x4.mul(p, e);
}

/**
 * Multiscale Adam's k directions for one tile of 8 coordinates (rows of 32 bytes): the gradients at g; the moments
 * at mv (k rows m_j, then k rows v_j), updated in place; per timescale j, 6 floats at params + 24·j: β1, β2,
 * 1 − β1, 1 − β2 and this step's corrections c1 = 1/(1 − β1^t), c2 = 1/(1 − β2^t); the direction
 * (m·c1)/(√(v·c2) + ε) of timescale j written to row j at out. The tfjs path's float32 order throughout:
 * β·m + (1 − β)·g, β·v + (1 − β)·g².
 */
export function multiscaleDirections(g: usize, mv: usize, k: i32, params: usize, epsilon: f32, out: usize): void {
  const eps = f32x4.splat(epsilon);
  for (let j: i32 = 0; j < k; j++) {
    const pj = params + <usize>j * 24;
    const b1 = v128.load32_splat(pj), b2 = v128.load32_splat(pj, 4);
    const a1 = v128.load32_splat(pj, 8), a2 = v128.load32_splat(pj, 12);
    const c1 = v128.load32_splat(pj, 16), c2 = v128.load32_splat(pj, 20);
    for (let off: usize = 0; off < 32; off += 16) {
      const gv = v128.load(g + off);
      const mp = mv + (<usize>j << 5) + off;
      const vp = mv + (<usize>(k + j) << 5) + off;
      const m = f32x4.add(f32x4.mul(b1, v128.load(mp)), f32x4.mul(a1, gv));
      const v = f32x4.add(f32x4.mul(b2, v128.load(vp)), f32x4.mul(a2, f32x4.mul(gv, gv)));
      v128.store(mp, m); v128.store(vp, v);
      v128.store(out + (<usize>j << 5) + off, f32x4.div(f32x4.mul(m, c1), f32x4.add(f32x4.sqrt(f32x4.mul(v, c2)), eps)));
    }
  }
}

/**
 * A softmax head over tiles of 8 coordinates (rows of 8 floats, 32 bytes): k logits W·[h; 1] (W row-major
 * [k, nh + 1], broadcast to every lane) from the nh rows at h; the weights w = softmax (k rows written at p) and
 * ⟨w, x⟩ over the k rows at x (one row written at dir). Multiscale Adam's combiners: lstm-stack.ts's softmax
 * output and multiscale-mlp.ts's network.
 */
export function softmaxCombine(W: usize, h: usize, nh: i32, x: usize, k: i32, p: usize, dir: usize): void {
  const h1: usize = <usize>(nh + 1) << 2;
  let m0 = f32x4.splat(-Infinity), m1 = m0;
  for (let j: i32 = 0; j < k; j++) {
    const wj = W + <usize>j * h1;
    let a0 = v128.load32_splat(wj + (<usize>nh << 2)), a1 = a0;
    let hp = h;
    for (let i: i32 = 0; i < nh; i++) {
      const w = v128.load32_splat(wj + (<usize>i << 2));
      a0 = mac(a0, w, v128.load(hp)); a1 = mac(a1, w, v128.load(hp, 16));
      hp += 32;
    }
    const pp = p + (<usize>j << 5);
    v128.store(pp, a0); v128.store(pp, a1, 16);
    m0 = f32x4.pmax(m0, a0); m1 = f32x4.pmax(m1, a1);
  }
  let s0 = f32x4.splat(0), s1 = s0;
  for (let j: i32 = 0; j < k; j++) {
    const pp = p + (<usize>j << 5);
    const e0 = vexp(f32x4.sub(v128.load(pp), m0)), e1 = vexp(f32x4.sub(v128.load(pp, 16), m1));
    v128.store(pp, e0); v128.store(pp, e1, 16);
    s0 = f32x4.add(s0, e0); s1 = f32x4.add(s1, e1);
  }
  const r0 = f32x4.div(XC(192), s0), r1 = f32x4.div(XC(192), s1);
  let d0 = f32x4.splat(0), d1 = d0;
  for (let j: i32 = 0; j < k; j++) {
    const pp = p + (<usize>j << 5);
    const xp = x + (<usize>j << 5);
    const w0 = f32x4.mul(v128.load(pp), r0), w1 = f32x4.mul(v128.load(pp, 16), r1);
    v128.store(pp, w0); v128.store(pp, w1, 16);
    d0 = mac(d0, w0, v128.load(xp)); d1 = mac(d1, w1, v128.load(xp, 16));
  }
  v128.store(dir, d0); v128.store(dir, d1, 16);
}

/** Horizontal sums of n v128 accumulators into n floats, added to out. */
export function reduceAcc(acc: usize, out: usize, n: i32): void {
  for (let i: i32 = 0; i < n; i++) {
    const v = v128.load(acc + (<usize>i << 4));
    const p = out + (<usize>i << 2);
    store<f32>(p, load<f32>(p) + f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
  }
}
