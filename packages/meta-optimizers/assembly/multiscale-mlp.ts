// Fused kernel of multiscale Adam with the "mlp" combiner (`multiscale-adam`, combiner "mlp"), in AssemblyScript,
// compiled to WebAssembly with 128-bit SIMD (and relaxed-SIMD fused multiply-add in the `fma` build).
//
// Per coordinate, at step t, for k pairs (β1_j, β2_j):
//   m_j ← β1_j·m_j + (1 − β1_j)·g,  v_j ← β2_j·v_j + (1 − β2_j)·g²,  u_j = m_j·c1_j / (√(v_j·c2_j) + ε)
//   a = ReLU(W1·[u; 1]) (H units),  ℓ = W2·[a; 1] (k logits),  w = softmax(ℓ),  dir = ⟨w, u⟩,  update = −η·dir
// and, first-order (the directions depend on the gradients alone, θ does not feed the network), the gradient of
// Σ_t ⟨D_t, θ_{t+1}⟩ with respect to W1, W2 and of log η (through S = Σ_t ⟨r_t, dir_t⟩, r_t = Σ_{s ≥ t} D_s).
//
// Layout as in lstm-stack.ts: a tile of 8 coordinates is two f32x4 vectors, a "row" 8 floats (32 bytes); the
// forward pass records each step's directions (k rows per tile), the backward pass recomputes the network from
// them one tile at a time. Weights are row-major with the bias in the last column, broadcast to all lanes;
// weight gradients accumulate one v128 per weight (lane partial sums, added up by reduceAcc).

import { mac, multiscaleDirections, softmaxCombine } from './simd';

export { reduceAcc } from './simd';

const RB: usize = 32;

let K: i32 = 3;
let H: i32 = 20;
let EPS: f32 = 1e-8;
const MAXK: i32 = 16;
// Per timescale j (up to MAXK), 6 floats at PARAMS + 24·j: β1, β2, 1 − β1, 1 − β2 and this step's corrections
// (the layout of simd.ts's multiscaleDirections).
const PARAMS = memory.data(MAXK * 24, 16);

/** Sets the architecture (k ≤ 16 timescales, h hidden units); returns the number of weights (W1 then W2). */
export function configure(k: i32, h: i32, eps: f32): i32 {
  K = k; H = h; EPS = eps;
  return H * (K + 1) + K * (H + 1);
}

/** Timescale j's decays and their complements (given, so that they round as the tfjs path's do). */
export function setBetas(j: i32, b1: f32, b2: f32, a1: f32, a2: f32): void {
  const pj = PARAMS + <usize>j * 24;
  store<f32>(pj, b1); store<f32>(pj, b2, 4); store<f32>(pj, a1, 8); store<f32>(pj, a2, 12);
}

/** Bytes of one thread's scratch for `forwardStep`/`backward`: u, a, p, dir and the backward's r and ∂L/∂ℓ. */
export function scratchBytes(): usize {
  return <usize>(3 * K + H + 2) * RB;
}

// ---------------------------------------------------------------- vector math

// ---------------------------------------------------------------- the network of one tile

// From u (K rows at u): a (H rows) = ReLU(W1·[u; 1]), p (K rows) = softmax(W2·[a; 1]); returns ⟨p, u⟩ in two
// vectors written to dir (1 row).
function network(W: usize, u: usize, a: usize, p: usize, dir: usize): void {
  const k1: usize = <usize>(K + 1) << 2;
  for (let h: i32 = 0; h < H; h++) {
    const wh: usize = W + <usize>h * k1;
    let z0 = v128.load32_splat(wh + (<usize>K << 2)), z1 = z0;
    let up = u;
    for (let j: i32 = 0; j < K; j++) {
      const w = v128.load32_splat(wh + (<usize>j << 2));
      z0 = mac(z0, w, v128.load(up)); z1 = mac(z1, w, v128.load(up, 16));
      up += RB;
    }
    // ReLU; pmax keeps NaN (its first operand) as the tfjs path does.
    const zero = f32x4.splat(0);
    const ap = a + <usize>h * RB;
    v128.store(ap, f32x4.pmax(z0, zero)); v128.store(ap, f32x4.pmax(z1, zero), 16);
  }
  softmaxCombine(W + (<usize>(H * (K + 1)) << 2), a, H, u, K, p, dir);
}

// ---------------------------------------------------------------- forward

/**
 * One step for tiles [t0, t1): gradients g (8 floats per tile, from tile 0) → updates −η·dir to upd (same layout);
 * moments (2K rows per tile: m_j, v_j) updated in place; the directions recorded at dirs + tile·K rows when
 * dirs != 0 (the caller offsets dirs by the step). `scr` is scratchBytes() of this thread's own.
 * c1_j = 1/(1 − β1_j^t), c2_j = 1/(1 − β2_j^t) are set with setCorrection first.
 */
export function forwardStep(t0: i32, t1: i32, g: usize, upd: usize, moments: usize, dirs: usize, W: usize, lr: f32, scr: usize): void {
  const u = scr;
  const a = u + <usize>K * RB;
  const p = a + <usize>H * RB;
  const dir = p + <usize>K * RB;
  const nlr = f32x4.splat(-lr);
  for (let t: i32 = t0; t < t1; t++) {
    const tt = <usize>t;
    multiscaleDirections(g + tt * RB, moments + tt * <usize>(2 * K) * RB, K, PARAMS, EPS, u);
    if (dirs != 0) memory.copy(dirs + tt * <usize>K * RB, u, <usize>K * RB);
    network(W, u, a, p, dir);
    v128.store(upd + tt * RB, f32x4.mul(v128.load(dir), nlr));
    v128.store(upd + tt * RB, f32x4.mul(v128.load(dir, 16), nlr), 16);
  }
}

/** This step's bias corrections of timescale j. */
export function setCorrection(j: i32, c1: f32, c2: f32): void {
  const pj = PARAMS + <usize>j * 24;
  store<f32>(pj, c1, 16); store<f32>(pj, c2, 20);
}

// ---------------------------------------------------------------- backward

/**
 * The weight gradients of tiles [t0, t1) over an unroll of U steps, added into acc (one v128 per weight, the
 * weight area's layout, then one v128 for S = Σ_t ⟨r_t, dir_t⟩). dirs: the recorded directions of step t, tile tl
 * at dirs + (t·nt + tl)·K rows; D: ∂L/∂θ_{t+1} of coordinate c at D + (t·npad + c) floats.
 */
export function backward(t0: i32, t1: i32, nt: i32, U: i32, dirs: usize, D: usize, W: usize, lr: f32, scr: usize, acc: usize): void {
  const npad: usize = <usize>nt * 8;
  const u = scr;
  const a = u + <usize>K * RB;
  const p = a + <usize>H * RB;
  const dir = p + <usize>K * RB;
  const run = dir + RB;
  const dl = run + RB;
  const W2 = W + (<usize>(H * (K + 1)) << 2);
  const acc2 = acc + (<usize>(H * (K + 1)) << 4);
  const accS = acc2 + (<usize>(K * (H + 1)) << 4);
  const nlr = f32x4.splat(-lr);
  const zero = f32x4.splat(0);
  for (let tl: i32 = t0; tl < t1; tl++) {
    v128.store(run, zero); v128.store(run, zero, 16);
    for (let t: i32 = U - 1; t >= 0; t--) {
      const dp = D + ((<usize>t * npad + <usize>tl * 8) << 2);
      const r0 = f32x4.add(v128.load(run), v128.load(dp)), r1 = f32x4.add(v128.load(run, 16), v128.load(dp, 16));
      v128.store(run, r0); v128.store(run, r1, 16);
      memory.copy(u, dirs + (<usize>t * <usize>nt + <usize>tl) * <usize>K * RB, <usize>K * RB);
      network(W, u, a, p, dir);
      const dir0 = v128.load(dir), dir1 = v128.load(dir, 16);
      v128.store(accS, f32x4.add(v128.load(accS), f32x4.add(f32x4.mul(r0, dir0), f32x4.mul(r1, dir1))));
      // ∂L/∂ℓ_j = −η·r·w_j·(u_j − dir).
      const q0 = f32x4.mul(nlr, r0), q1 = f32x4.mul(nlr, r1);
      for (let j: i32 = 0; j < K; j++) {
        const jo = <usize>j * RB;
        v128.store(dl + jo, f32x4.mul(f32x4.mul(q0, v128.load(p + jo)), f32x4.sub(v128.load(u + jo), dir0)));
        v128.store(dl + jo, f32x4.mul(f32x4.mul(q1, v128.load(p + jo, 16)), f32x4.sub(v128.load(u + jo, 16), dir1)), 16);
      }
      // W2: acc2[j][h] += dl_j·a_h, bias += dl_j.
      for (let j: i32 = 0; j < K; j++) {
        const jo = <usize>j * RB;
        const e0 = v128.load(dl + jo), e1 = v128.load(dl + jo, 16);
        let ap = acc2 + (<usize>(j * (H + 1)) << 4);
        for (let h: i32 = 0; h < H; h++) {
          const ho = <usize>h * RB;
          v128.store(ap, mac(mac(v128.load(ap), e0, v128.load(a + ho)), e1, v128.load(a + ho, 16)));
          ap += 16;
        }
        v128.store(ap, f32x4.add(v128.load(ap), f32x4.add(e0, e1)));
      }
      // da_h = Σ_j W2[j][h]·dl_j where a_h > 0 (ReLU's gradient, 0 at 0 as in tfjs); W1: acc[h][j] += da_h·u_j.
      const h1: usize = <usize>(H + 1) << 2;
      for (let h: i32 = 0; h < H; h++) {
        let s0 = f32x4.splat(0), s1 = s0;
        for (let j: i32 = 0; j < K; j++) {
          const w = v128.load32_splat(W2 + <usize>j * h1 + (<usize>h << 2));
          s0 = mac(s0, w, v128.load(dl + <usize>j * RB)); s1 = mac(s1, w, v128.load(dl + <usize>j * RB, 16));
        }
        const ho = <usize>h * RB;
        s0 = v128.and(s0, f32x4.gt(v128.load(a + ho), zero));
        s1 = v128.and(s1, f32x4.gt(v128.load(a + ho, 16), zero));
        let ap = acc + (<usize>(h * (K + 1)) << 4);
        for (let j: i32 = 0; j < K; j++) {
          const jo = <usize>j * RB;
          v128.store(ap, mac(mac(v128.load(ap), s0, v128.load(u + jo)), s1, v128.load(u + jo, 16)));
          ap += 16;
        }
        v128.store(ap, f32x4.add(v128.load(ap), f32x4.add(s0, s1)));
      }
    }
  }
}
