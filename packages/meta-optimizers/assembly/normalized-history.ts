// Fused kernel of the normalised-history optimizer (`normalized-history`), in AssemblyScript, compiled to
// WebAssembly with 128-bit SIMD (and relaxed-SIMD fused multiply-add in the `fma` build).
//
// Per coordinate, with the windows P (the last K parameters, oldest first) and G (the last K gradients), as in
// src/normalized-history/normalized-history.ts:
//   hi = max P, lo = min P, mid = (hi + lo)/2, unit = hi − lo + minStep
//   x = [P̂; Ĝ]: Ĝ = G·(1/max(‖G‖∞, 1e-30)); P̂ = (P − mid)·(2/unit) ("range") or P·(1/max(max(|hi|, |lo|), 1e-30))
//   h = ReLU(W1·[x; 1]) (HD units), a = W2·[h; 1] (M magnitude logits, then the logits of −1 and +1)
//   μ = ⟨softmax(a_0..M−1), grid⟩, σ = tanh((a₊ − a₋)/2), θ' = mid + σ·μ·unit
// and, first-order (the gradients are constants, the parameters are not: every θ feeds the next K windows), the
// gradient of Σ_t ⟨D_t, θ_{t+1}⟩ with respect to W1 and W2 over an unroll, where D_t = ∂L/∂θ_{t+1} is given by
// the host. The backward pass runs per coordinate through that recurrence: the adjoint of θ_{t+1} is D_t plus
// what the K later windows holding it send back through mid, unit and P̂; max and min split their gradient
// evenly among tied entries, as the tfjs path's maxMinRows does.
//
// Recompute, not store: the forward pass records only each step's θ and g (2 rows per tile per step) and the
// windows at the unroll's start; the backward pass rebuilds one tile's windows from them (they are consecutive
// rows of one sequence, so a window is a pointer) and recomputes that step's network. Storing the network's
// activations would take (2K + HD + M + 8) rows per step (344 bytes per coordinate and step at the default sizes:
// 110 MB for an unroll of 20 on 15,910 coordinates) against 8 bytes, to save the recomputation, about 40 % of the
// backward pass's time; lstm-stack.ts measured that writing records of that size costs the forward pass what it
// saves the backward pass.
//
// Layout as in lstm-stack.ts: a tile of 8 coordinates is two f32x4 vectors, a "row" 8 floats (32 bytes). Weights
// are row-major with the bias in the last column, broadcast to all lanes; weight gradients accumulate one v128
// per weight (lane partial sums, added up by reduceAcc). State of one tile: K rows P, then K rows G.

import { mac, softmaxCombine, vexp } from './simd';

export { reduceAcc } from './simd';

const RB: usize = 32;

let K: i32 = 10;
let HD: i32 = 50;
let M: i32 = 8;
let MIN_STEP: f32 = 1e-4;
let INF_NORM: bool = false;
// M rows at GRID (host memory, shared with worker threads): each magnitude of the grid splatted to a row.
let GRID: usize = 0;
const TINY: f32 = 1e-30;

/** Sets the architecture; returns the number of weights (W1 [hd, 2k + 1], then W2 [m + 2, hd + 1]). */
export function configure(k: i32, hd: i32, m: i32, minStep: f32, infNorm: bool, grid: usize): i32 {
  K = k; HD = hd; M = m; MIN_STEP = minStep; INF_NORM = infNorm; GRID = grid;
  return HD * (2 * K + 1) + (M + 2) * (HD + 1);
}

// Scratch rows of one step's network (forward and backward alike), before the backward's sequences.
// @ts-ignore: decorator
@inline function xRow(): i32 { return 0; }                 // 2K rows: P̂, Ĝ
// @ts-ignore: decorator
@inline function hRow(): i32 { return 2 * K; }             // HD rows
// @ts-ignore: decorator
@inline function pRow(): i32 { return 2 * K + HD; }        // M rows: softmax of the magnitude logits
// Then single rows: μ, σ, hi, lo, mid, unit, the input scale q (2/unit, or 1/max(‖P‖∞, 1e-30)), θ'.
// @ts-ignore: decorator
@inline function sRow(): i32 { return 2 * K + HD + M; }
const S_MU: i32 = 0, S_SIG: i32 = 1, S_HI: i32 = 2, S_LO: i32 = 3, S_MID: i32 = 4, S_UNIT: i32 = 5, S_Q: i32 = 6, S_OUT: i32 = 7;
// Backward only: M + 2 rows of logit adjoints, K rows of ∂/∂P̂, HD rows of the hidden pre-activations' adjoints.
// @ts-ignore: decorator
@inline function dlRow(): i32 { return sRow() + 8; }
// @ts-ignore: decorator
@inline function dxRow(): i32 { return dlRow() + M + 2; }
// @ts-ignore: decorator
@inline function dzRow(): i32 { return dxRow() + K; }
// @ts-ignore: decorator
@inline function netRows(): i32 { return dzRow() + HD; }

/** Bytes of one thread's scratch for forwardStep and for a backward pass over unrolls of up to u steps. */
export function scratchBytes(u: i32): usize {
  // The backward's sequences: P and G over K + u rows, the parameters' adjoints over K + u + 1.
  return <usize>(netRows() + 3 * (K + u) + 1) * RB;
}

// ---------------------------------------------------------------- one step of one tile

/** The update of one tile from its windows P and G (K rows each, oldest first); θ' to row S_OUT of the scratch. */
function stepTile(P: usize, G: usize, W: usize, net: usize): void {
  const x = net + <usize>xRow() * RB;
  const h = net + <usize>hRow() * RB;
  const p = net + <usize>pRow() * RB;
  const s = net + <usize>sRow() * RB;
  const half = f32x4.splat(0.5), one = f32x4.splat(1), zero = f32x4.splat(0);
  const tiny = f32x4.splat(TINY), minStep = f32x4.splat(MIN_STEP);
  for (let o: usize = 0; o < 32; o += 16) {
    // max and min propagate NaN (f32x4.max/min), so a NaN anywhere in the window makes the update NaN, as on the
    // tfjs path (whose P̂ and Ĝ then hold a NaN whatever its max does).
    let hi = v128.load(P + o), lo = hi, gn = f32x4.abs(v128.load(G + o));
    for (let j: i32 = 1; j < K; j++) {
      const v = v128.load(P + <usize>j * RB + o);
      hi = f32x4.max(hi, v); lo = f32x4.min(lo, v);
      gn = f32x4.max(gn, f32x4.abs(v128.load(G + <usize>j * RB + o)));
    }
    const mid = f32x4.mul(f32x4.add(hi, lo), half);
    const unit = f32x4.add(f32x4.sub(hi, lo), minStep);
    const gr = f32x4.div(one, f32x4.max(gn, tiny));
    let q: v128;
    if (INF_NORM) q = f32x4.div(one, f32x4.max(f32x4.max(f32x4.abs(hi), f32x4.abs(lo)), tiny));
    else q = f32x4.div(f32x4.splat(2), unit);
    for (let j: i32 = 0; j < K; j++) {
      const jo = <usize>j * RB + o;
      const v = v128.load(P + jo);
      v128.store(x + jo, f32x4.mul(INF_NORM ? v : f32x4.sub(v, mid), q));
      v128.store(x + <usize>K * RB + jo, f32x4.mul(v128.load(G + jo), gr));
    }
    v128.store(s + <usize>S_HI * RB + o, hi); v128.store(s + <usize>S_LO * RB + o, lo);
    v128.store(s + <usize>S_MID * RB + o, mid); v128.store(s + <usize>S_UNIT * RB + o, unit);
    v128.store(s + <usize>S_Q * RB + o, q);
  }
  // h = ReLU(W1·[x; 1]); pmax keeps NaN (its first operand) as tf.relu does. Four units at a time share each
  // row of x (half the loads); each unit's sum runs in the same order either way.
  const nx = 2 * K;
  const c1: usize = <usize>(nx + 1) << 2;
  let j: i32 = 0;
  for (; j + 4 <= HD; j += 4) {
    const wa = W + <usize>j * c1, wb = wa + c1, wc = wb + c1, wd = wc + c1;
    const bo: usize = <usize>nx << 2;
    let a0 = v128.load32_splat(wa + bo), a1 = a0, b0 = v128.load32_splat(wb + bo), b1 = b0;
    let c0 = v128.load32_splat(wc + bo), cc1 = c0, d0 = v128.load32_splat(wd + bo), d1 = d0;
    let xp = x;
    for (let c: i32 = 0; c < nx; c++) {
      const co: usize = <usize>c << 2;
      const x0 = v128.load(xp), x1 = v128.load(xp, 16);
      let w = v128.load32_splat(wa + co); a0 = mac(a0, w, x0); a1 = mac(a1, w, x1);
      w = v128.load32_splat(wb + co); b0 = mac(b0, w, x0); b1 = mac(b1, w, x1);
      w = v128.load32_splat(wc + co); c0 = mac(c0, w, x0); cc1 = mac(cc1, w, x1);
      w = v128.load32_splat(wd + co); d0 = mac(d0, w, x0); d1 = mac(d1, w, x1);
      xp += RB;
    }
    const hp = h + <usize>j * RB;
    v128.store(hp, f32x4.pmax(a0, zero)); v128.store(hp, f32x4.pmax(a1, zero), 16);
    v128.store(hp, f32x4.pmax(b0, zero), 32); v128.store(hp, f32x4.pmax(b1, zero), 48);
    v128.store(hp, f32x4.pmax(c0, zero), 64); v128.store(hp, f32x4.pmax(cc1, zero), 80);
    v128.store(hp, f32x4.pmax(d0, zero), 96); v128.store(hp, f32x4.pmax(d1, zero), 112);
  }
  for (; j < HD; j++) {
    const wj = W + <usize>j * c1;
    let z0 = v128.load32_splat(wj + (<usize>nx << 2)), z1 = z0;
    let xp = x;
    for (let c: i32 = 0; c < nx; c++) {
      const w = v128.load32_splat(wj + (<usize>c << 2));
      z0 = mac(z0, w, v128.load(xp)); z1 = mac(z1, w, v128.load(xp, 16));
      xp += RB;
    }
    const hp = h + <usize>j * RB;
    v128.store(hp, f32x4.pmax(z0, zero)); v128.store(hp, f32x4.pmax(z1, zero), 16);
  }
  // μ = ⟨softmax(magnitude logits), grid⟩.
  const W2 = W + (<usize>(HD * (nx + 1)) << 2);
  const h1: usize = <usize>(HD + 1) << 2;
  softmaxCombine(W2, h, HD, GRID, M, p, s + <usize>S_MU * RB);
  // σ = tanh(d/2), d = a₊ − a₋, as (1 − e^−|d|)/(1 + e^−|d|) with d's sign: exact to float32 rounding for any d.
  const wm = W2 + <usize>M * h1, wp = wm + h1;
  let d0 = f32x4.sub(v128.load32_splat(wp + (<usize>HD << 2)), v128.load32_splat(wm + (<usize>HD << 2))), d1 = d0;
  for (let j: i32 = 0; j < HD; j++) {
    const w = f32x4.sub(v128.load32_splat(wp + (<usize>j << 2)), v128.load32_splat(wm + (<usize>j << 2)));
    const hp = h + <usize>j * RB;
    d0 = mac(d0, w, v128.load(hp)); d1 = mac(d1, w, v128.load(hp, 16));
  }
  for (let o: usize = 0; o < 32; o += 16) {
    const d = o == 0 ? d0 : d1;
    const e = vexp(f32x4.neg(f32x4.abs(d)));
    const t = f32x4.div(f32x4.sub(one, e), f32x4.add(one, e));
    const sig = v128.bitselect(f32x4.neg(t), t, f32x4.lt(d, zero));
    v128.store(s + <usize>S_SIG * RB + o, sig);
    const mu = v128.load(s + <usize>S_MU * RB + o);
    const mid = v128.load(s + <usize>S_MID * RB + o), unit = v128.load(s + <usize>S_UNIT * RB + o);
    v128.store(s + <usize>S_OUT * RB + o, f32x4.add(mid, f32x4.mul(f32x4.mul(sig, mu), unit)));
  }
}

// ---------------------------------------------------------------- forward

/**
 * One step for tiles [t0, t1): parameters th and gradients g (8 floats per tile, from tile 0) → new parameters
 * to out (same layout); the windows (2K rows per tile at state) shifted in place, or, at the run's first step
 * (first != 0), filled with θ₀ and g₀ as the tfjs path's init and first update do. If xs != 0 the tiles' θ and g
 * are recorded there (2 rows per tile, from tile 0) for the backward pass. `scr` is scratchBytes() of this
 * thread's own.
 */
export function forwardStep(t0: i32, t1: i32, th: usize, g: usize, out: usize, state: usize, xs: usize, W: usize, first: i32, scr: usize): void {
  const kb: usize = <usize>K * RB;
  for (let t: i32 = t0; t < t1; t++) {
    const tt = <usize>t;
    const P = state + tt * 2 * kb;
    const G = P + kb;
    const tv = th + tt * RB, gv = g + tt * RB;
    if (first != 0) {
      for (let j: i32 = 0; j < K; j++) {
        memory.copy(P + <usize>j * RB, tv, RB);
        memory.copy(G + <usize>j * RB, gv, RB);
      }
    } else {
      memory.copy(P, P + RB, kb - RB); memory.copy(P + kb - RB, tv, RB);
      memory.copy(G, G + RB, kb - RB); memory.copy(G + kb - RB, gv, RB);
    }
    if (xs != 0) { memory.copy(xs + tt * 2 * RB, tv, RB); memory.copy(xs + tt * 2 * RB + RB, gv, RB); }
    stepTile(P, G, W, scr);
    memory.copy(out + tt * RB, scr + <usize>(sRow() + S_OUT) * RB, RB);
  }
}

// ---------------------------------------------------------------- backward

/**
 * The weight gradients of tiles [t0, t1) over an unroll of U steps, added into acc (one v128 per weight, the
 * weight area's layout). init: the windows at the unroll's start (2K rows per tile, from tile 0), unused when the
 * unroll began at the run's first step (first != 0: the windows were θ₀ and g₀ throughout); xs: the recorded θ
 * and g of step t, tile tl at xs + (t·nt + tl)·2 rows; D: ∂L/∂θ_{t+1} of coordinate c at D + (t·npad + c) floats.
 */
export function backward(t0: i32, t1: i32, nt: i32, U: i32, init: usize, xs: usize, D: usize, W: usize, first: i32, scr: usize, acc: usize): void {
  const npad: usize = <usize>nt * 8;
  const kb: usize = <usize>K * RB;
  const net = scr;
  // The sequences of one tile: θ over K + U rows (the window at the start, then θ_s..θ_{s+U−1}), g likewise, and
  // the adjoints of those parameters (one more row: θ_{s+U}, which no window of this unroll holds).
  const Ps = scr + <usize>netRows() * RB;
  const Gs = Ps + <usize>(K + U) * RB;
  const lam = Gs + <usize>(K + U) * RB;
  const x = net + <usize>xRow() * RB;
  const h = net + <usize>hRow() * RB;
  const p = net + <usize>pRow() * RB;
  const s = net + <usize>sRow() * RB;
  const dl = net + <usize>dlRow() * RB;
  const dx = net + <usize>dxRow() * RB;
  const dz = net + <usize>dzRow() * RB;
  const nx = 2 * K;
  const c1: usize = <usize>(nx + 1) << 2;
  const h1: usize = <usize>(HD + 1) << 2;
  const W2 = W + (<usize>(HD * (nx + 1)) << 2);
  const acc2 = acc + (<usize>(HD * (nx + 1)) << 4);
  const zero = f32x4.splat(0), half = f32x4.splat(0.5), one = f32x4.splat(1);
  const tiny = f32x4.splat(TINY);
  for (let tl: i32 = t0; tl < t1; tl++) {
    const tt = <usize>tl;
    if (first != 0) {
      const r0 = xs + tt * 2 * RB;
      for (let j: i32 = 0; j < K; j++) { memory.copy(Ps + <usize>j * RB, r0, RB); memory.copy(Gs + <usize>j * RB, r0 + RB, RB); }
    } else {
      memory.copy(Ps, init + tt * 2 * kb, kb);
      memory.copy(Gs, init + tt * 2 * kb + kb, kb);
    }
    for (let t: i32 = 0; t < U; t++) {
      const r = xs + (<usize>t * <usize>nt + tt) * 2 * RB;
      memory.copy(Ps + <usize>(K + t) * RB, r, RB);
      memory.copy(Gs + <usize>(K + t) * RB, r + RB, RB);
    }
    memory.fill(lam, 0, <usize>(K + U + 1) * RB);
    for (let t: i32 = U - 1; t >= 0; t--) {
      // Step t's windows are rows t + 1 .. t + K of the sequences.
      const P = Ps + <usize>(t + 1) * RB;
      stepTile(P, Gs + <usize>(t + 1) * RB, W, net);
      const dp = D + ((<usize>t * npad + tt * 8) << 2);
      const lo = lam + <usize>(K + t + 1) * RB;
      // Logit adjoints from λ = ∂L/∂θ' = D_t + what later windows sent back to θ_{s+t+1}.
      for (let o: usize = 0; o < 32; o += 16) {
        const l = f32x4.add(v128.load(dp + o), v128.load(lo + o));
        v128.store(lo + o, l);
        const mu = v128.load(s + <usize>S_MU * RB + o), sig = v128.load(s + <usize>S_SIG * RB + o);
        const unit = v128.load(s + <usize>S_UNIT * RB + o);
        const dmu = f32x4.mul(f32x4.mul(l, sig), unit);
        const dsig = f32x4.mul(f32x4.mul(l, mu), unit);
        for (let i: i32 = 0; i < M; i++) {
          const io = <usize>i * RB + o;
          v128.store(dl + io, f32x4.mul(f32x4.mul(dmu, v128.load(p + io)), f32x4.sub(v128.load(GRID + io), mu)));
        }
        // dσ/dd = (1 − σ²)/2 with d = a₊ − a₋.
        const dd = f32x4.mul(f32x4.mul(dsig, f32x4.sub(one, f32x4.mul(sig, sig))), half);
        v128.store(dl + <usize>M * RB + o, f32x4.neg(dd));
        v128.store(dl + <usize>(M + 1) * RB + o, dd);
      }
      // W2: acc2[i][j] += dl_i·h_j, bias += dl_i; two logits at a time share the loads of h.
      let i2: i32 = 0;
      for (; i2 + 2 <= M + 2; i2 += 2) {
        const io = <usize>i2 * RB;
        const e0 = v128.load(dl + io), e1 = v128.load(dl + io, 16), f0 = v128.load(dl + io, 32), f1 = v128.load(dl + io, 48);
        let ap = acc2 + (<usize>(i2 * (HD + 1)) << 4);
        let bp = ap + (<usize>(HD + 1) << 4);
        for (let j: i32 = 0; j < HD; j++) {
          const jo = <usize>j * RB;
          const h0 = v128.load(h + jo), hh1 = v128.load(h + jo, 16);
          v128.store(ap, mac(mac(v128.load(ap), e0, h0), e1, hh1));
          v128.store(bp, mac(mac(v128.load(bp), f0, h0), f1, hh1));
          ap += 16; bp += 16;
        }
        v128.store(ap, f32x4.add(v128.load(ap), f32x4.add(e0, e1)));
        v128.store(bp, f32x4.add(v128.load(bp), f32x4.add(f0, f1)));
      }
      for (let i: i32 = i2; i < M + 2; i++) {
        const io = <usize>i * RB;
        const e0 = v128.load(dl + io), e1 = v128.load(dl + io, 16);
        let ap = acc2 + (<usize>(i * (HD + 1)) << 4);
        for (let j: i32 = 0; j < HD; j++) {
          const jo = <usize>j * RB;
          v128.store(ap, mac(mac(v128.load(ap), e0, v128.load(h + jo)), e1, v128.load(h + jo, 16)));
          ap += 16;
        }
        v128.store(ap, f32x4.add(v128.load(ap), f32x4.add(e0, e1)));
      }
      // dz_j = Σ_i W2[i][j]·dl_i where h_j > 0 (ReLU's gradient, 0 at 0 as in tfjs), four units at a time.
      let j: i32 = 0;
      for (; j + 4 <= HD; j += 4) {
        let a0 = zero, a1 = zero, b0 = zero, b1 = zero, c0 = zero, cc1 = zero, d0 = zero, d1 = zero;
        for (let i: i32 = 0; i < M + 2; i++) {
          const wi = W2 + <usize>i * h1 + (<usize>j << 2);
          const e0 = v128.load(dl + <usize>i * RB), e1 = v128.load(dl + <usize>i * RB, 16);
          let w = v128.load32_splat(wi); a0 = mac(a0, w, e0); a1 = mac(a1, w, e1);
          w = v128.load32_splat(wi, 4); b0 = mac(b0, w, e0); b1 = mac(b1, w, e1);
          w = v128.load32_splat(wi, 8); c0 = mac(c0, w, e0); cc1 = mac(cc1, w, e1);
          w = v128.load32_splat(wi, 12); d0 = mac(d0, w, e0); d1 = mac(d1, w, e1);
        }
        const hp = h + <usize>j * RB, zp = dz + <usize>j * RB;
        v128.store(zp, v128.and(a0, f32x4.gt(v128.load(hp), zero))); v128.store(zp, v128.and(a1, f32x4.gt(v128.load(hp, 16), zero)), 16);
        v128.store(zp, v128.and(b0, f32x4.gt(v128.load(hp, 32), zero)), 32); v128.store(zp, v128.and(b1, f32x4.gt(v128.load(hp, 48), zero)), 48);
        v128.store(zp, v128.and(c0, f32x4.gt(v128.load(hp, 64), zero)), 64); v128.store(zp, v128.and(cc1, f32x4.gt(v128.load(hp, 80), zero)), 80);
        v128.store(zp, v128.and(d0, f32x4.gt(v128.load(hp, 96), zero)), 96); v128.store(zp, v128.and(d1, f32x4.gt(v128.load(hp, 112), zero)), 112);
      }
      for (; j < HD; j++) {
        let z0 = zero, z1 = zero;
        for (let i: i32 = 0; i < M + 2; i++) {
          const w = v128.load32_splat(W2 + <usize>i * h1 + (<usize>j << 2));
          z0 = mac(z0, w, v128.load(dl + <usize>i * RB)); z1 = mac(z1, w, v128.load(dl + <usize>i * RB, 16));
        }
        const jo = <usize>j * RB;
        v128.store(dz + jo, v128.and(z0, f32x4.gt(v128.load(h + jo), zero)));
        v128.store(dz + jo, v128.and(z1, f32x4.gt(v128.load(h + jo, 16), zero)), 16);
      }
      // W1: acc[j][c] += dz_j·x_c, bias += dz_j. A unit off in all 8 lanes contributes nothing: skipped.
      for (j = 0; j < HD; j++) {
        const z0 = v128.load(dz + <usize>j * RB), z1 = v128.load(dz + <usize>j * RB, 16);
        if (!v128.any_true(v128.or(z0, z1))) continue;
        let ap = acc + (<usize>(j * (nx + 1)) << 4);
        for (let c: i32 = 0; c < nx; c++) {
          const co = <usize>c * RB;
          v128.store(ap, mac(mac(v128.load(ap), z0, v128.load(x + co)), z1, v128.load(x + co, 16)));
          ap += 16;
        }
        v128.store(ap, f32x4.add(v128.load(ap), f32x4.add(z0, z1)));
      }
      // ∂/∂P̂_c = Σ_j W1[j][c]·dz_j (Ĝ is a constant), four inputs at a time.
      let c: i32 = 0;
      for (; c + 4 <= K; c += 4) {
        let a0 = zero, a1 = zero, b0 = zero, b1 = zero, c0 = zero, cc1 = zero, d0 = zero, d1 = zero;
        for (j = 0; j < HD; j++) {
          const wj = W + <usize>j * c1 + (<usize>c << 2);
          const z0 = v128.load(dz + <usize>j * RB), z1 = v128.load(dz + <usize>j * RB, 16);
          let w = v128.load32_splat(wj); a0 = mac(a0, w, z0); a1 = mac(a1, w, z1);
          w = v128.load32_splat(wj, 4); b0 = mac(b0, w, z0); b1 = mac(b1, w, z1);
          w = v128.load32_splat(wj, 8); c0 = mac(c0, w, z0); cc1 = mac(cc1, w, z1);
          w = v128.load32_splat(wj, 12); d0 = mac(d0, w, z0); d1 = mac(d1, w, z1);
        }
        const xp = dx + <usize>c * RB;
        v128.store(xp, a0); v128.store(xp, a1, 16); v128.store(xp, b0, 32); v128.store(xp, b1, 48);
        v128.store(xp, c0, 64); v128.store(xp, cc1, 80); v128.store(xp, d0, 96); v128.store(xp, d1, 112);
      }
      for (; c < K; c++) {
        let z0 = zero, z1 = zero;
        for (j = 0; j < HD; j++) {
          const w = v128.load32_splat(W + <usize>j * c1 + (<usize>c << 2));
          z0 = mac(z0, w, v128.load(dz + <usize>j * RB)); z1 = mac(z1, w, v128.load(dz + <usize>j * RB, 16));
        }
        v128.store(dx + <usize>c * RB, z0); v128.store(dx + <usize>c * RB, z1, 16);
      }
      // Back through P̂, mid, unit, hi and lo into the window's parameters.
      for (let o: usize = 0; o < 32; o += 16) {
        const l = v128.load(lo + o);
        const sig = v128.load(s + <usize>S_SIG * RB + o), mu = v128.load(s + <usize>S_MU * RB + o);
        const hi = v128.load(s + <usize>S_HI * RB + o), lw = v128.load(s + <usize>S_LO * RB + o);
        const mid = v128.load(s + <usize>S_MID * RB + o), unit = v128.load(s + <usize>S_UNIT * RB + o);
        const q = v128.load(s + <usize>S_Q * RB + o);
        // θ' = mid + σ·μ·unit.
        let dmid = l;
        let dunit = f32x4.mul(f32x4.mul(l, sig), mu);
        let dhi = zero, dlo = zero;
        let sdx = zero, dq = zero;
        for (let j: i32 = 0; j < K; j++) {
          const jo = <usize>j * RB + o;
          const d = v128.load(dx + jo);
          sdx = f32x4.add(sdx, d);
          dq = mac(dq, d, INF_NORM ? v128.load(P + jo) : f32x4.sub(v128.load(P + jo), mid));
          v128.store(dx + jo, f32x4.mul(d, q));
        }
        if (INF_NORM) {
          // q = 1/max(n, 1e-30), n = max(|hi|, |lo|): tf.maximum's gradient goes to its first operand on ties,
          // abs's is −1 at 0.
          const n = f32x4.max(f32x4.abs(hi), f32x4.abs(lw));
          const dn = v128.and(f32x4.neg(f32x4.mul(dq, f32x4.mul(q, q))), f32x4.ge(n, tiny));
          const toHi = f32x4.ge(f32x4.abs(hi), f32x4.abs(lw));
          const dh = v128.and(dn, toHi), dlv = v128.andnot(dn, toHi);
          dhi = v128.bitselect(dh, f32x4.neg(dh), f32x4.gt(hi, zero));
          dlo = v128.bitselect(dlv, f32x4.neg(dlv), f32x4.gt(lw, zero));
        } else {
          // P̂ = (P − mid)·q, q = 2/unit.
          dmid = f32x4.sub(dmid, f32x4.mul(sdx, q));
          dunit = f32x4.sub(dunit, f32x4.div(f32x4.mul(dq, q), unit));
        }
        // mid = (hi + lo)/2, unit = hi − lo + minStep.
        dhi = f32x4.add(dhi, f32x4.add(f32x4.mul(dmid, half), dunit));
        dlo = f32x4.add(dlo, f32x4.sub(f32x4.mul(dmid, half), dunit));
        // Ties share max's and min's gradient evenly.
        let nh = zero, nl = zero;
        for (let j: i32 = 0; j < K; j++) {
          const v = v128.load(P + <usize>j * RB + o);
          nh = f32x4.add(nh, v128.and(f32x4.eq(v, hi), one));
          nl = f32x4.add(nl, v128.and(f32x4.eq(v, lw), one));
        }
        const sh = f32x4.div(dhi, nh), sl = f32x4.div(dlo, nl);
        for (let j: i32 = 0; j < K; j++) {
          const jo = <usize>j * RB + o;
          const v = v128.load(P + jo);
          let d = f32x4.add(v128.load(dx + jo), v128.and(f32x4.eq(v, hi), sh));
          d = f32x4.add(d, v128.and(f32x4.eq(v, lw), sl));
          // Window row j holds sequence row t + 1 + j.
          const lp = lam + <usize>(t + 1 + j) * RB + o;
          v128.store(lp, f32x4.add(v128.load(lp), d));
        }
      }
    }
  }
}
