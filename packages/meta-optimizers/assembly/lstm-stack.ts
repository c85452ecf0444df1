// Fused kernel of the coordinatewise LSTM-stack learned optimizers (`lstm`, `rnnprop`), in AssemblyScript,
// compiled to WebAssembly with 128-bit SIMD (and relaxed-SIMD fused multiply-add in the `fma` build).
//
// What it computes, per coordinate (all coordinates share the weights φ):
//   features x   (F rows)   g itself, logAndSign(g) (Andrychowicz et al. 2016), RNNprop's Adam-normalised
//                           pair (g/(√v̂+ε), m̂/(√v̂+ε)), or multiscale Adam's F directions m̂_j/(√v̂_j+ε)
//                           (one per (β1_j, β2_j)), with the moments kept per coordinate
//   input layer  (E rows)   optional: y = ELU(Win·[x; 1])                                (RNNprop)
//   L LSTM layers of H      [i; f; g; o] = W_l·[in; h; 1], c' = σf·c + σi·tanh g, h' = σo·tanh c'
//   output                  a = Wo·[h_top; 1]; update = scale·a, or scale·tanh(a)        (RNNprop: scale = −lr)
//                           or, softmax head (multiscale Adam's RNN combiner): F logits a = Wo·[h_top; 1],
//                           w = softmax(a), update = scale·⟨w, x⟩                      (scale = −η)
// and, first-order (the optimizee's gradients are constants), the gradient of Σ_t ⟨D_t, θ_{t+1}⟩ with respect to
// φ over an unroll, where θ_{t+1} = θ_t + update_t and D_t = ∂L/∂θ_{t+1} is given by the host.
//
// Layout: a tile of T = 8 coordinates is two f32x4 vectors; every per-coordinate quantity of a tile is a "row"
// of 8 floats (32 bytes). Weights are broadcast to all lanes. The host writes them row-major with the bias in the
// last column (the weights' own layout); packWeights then interleaves each LSTM layer's four gates, so that unit
// u's i, f, g, o weights of column k are 4 consecutive floats: the matrix products then read them at constant
// offsets from one pointer (~15 % less time than four row pointers). Weight gradients keep the row-major layout.
// The forward pass keeps the state and, within a memory budget, each step's gate activations of some layers of
// some tiles (the gate store, below); the backward pass rebuilds one tile's records of the unroll in scratch memory
// (the size of the unroll, not of the coordinates), recomputing what the store lacks, backpropagates through them,
// then accumulates the weight gradients of that tile over all steps at once ("recompute" in the prototype's terms).
//
// Gate store: a layer's gates are 4H of its 7H rows but cost all of its matrix product and most of its σ and tanh;
// c, tanh c and h follow from them and the previous step with a few elementwise operations. So the store keeps
// gates only, filled from the top layer down (the top layer's product is the larger, 2H + 1 columns against
// F + H + 1 or E + H + 1), tile by tile. At 15,910 coordinates whole records (7H rows a layer) took about 1 % off the
// kernel's time, their memory traffic costing nearly what they saved; gates alone, copied in bulk, 6-8 %. Layout at `store`:
// L i32 counts n_l (padded to a multiple of 32 bytes), then per layer l = 0..L−1 its n_l tiles' gates, tile-major, `cap` steps of 4H rows
// each: tiles [0, n_l) of layer l have theirs stored. Rebuilding from stored gates gives the same bits as
// recomputing them: the same operations on the same values.
//
// Record of one step of one tile (rows):
//   X [F] | Y [E] | per layer l: h [H], c [H], tanh c [H], gates [4H] (i, f, g, o; adjoints after backward) |
//   O [1] (tanh a; softmax head: F rows w, then ⟨w, x⟩) | DY [E] (adjoint of the input layer's pre-activation)
// State of one tile (rows): per layer l: h [H], c [H]. Moments of one tile (Adam features): F rows m, F rows v.

import { mac, multiscaleDirections, softmaxCombine, vexp } from './simd';

export { reduceAcc } from './simd';

const T: i32 = 8;
const RB: usize = 32;

// ---------------------------------------------------------------- configuration (per instance)

let F: i32 = 2;
let E: i32 = 0;
let H: i32 = 20;
let L: i32 = 2;
let FEAT: i32 = 1; // 0: g, 1: logAndSign, 2: Adam-normalised (RNNprop), 3: multiscale Adam directions
let OUT_TANH: bool = false;
let SOFTMAX: bool = false;
// Features 3: per timescale j, 6 floats at PARAMS + 24·j (host memory, shared with worker threads): β1, β2,
// 1 − β1, 1 − β2 and this step's corrections 1/(1 − β1^t), 1/(1 − β2^t).
let PARAMS: usize = 0;
let PK: f32 = 10.0;
let BETA1: f32 = 0.95;
let BETA2: f32 = 0.95;
let EPS: f32 = 1e-8;
let REC: i32 = 0;
let LAYER0: i32 = 0; // first row of layer 0's block in a record
let O_ROW: i32 = 0;
let DY_ROW: i32 = 0;
let STATE: i32 = 0; // rows of state per tile

/** Sets the architecture; returns the number of weights (floats) the weight area must hold. */
export function configure(f: i32, e: i32, h: i32, l: i32, feat: i32, outTanh: bool, softmax: bool, params: usize, k: f32,
                          beta1: f32, beta2: f32, eps: f32): i32 {
  F = f; E = e; H = h; L = l; FEAT = feat; OUT_TANH = outTanh; SOFTMAX = softmax; PARAMS = params; PK = k;
  BETA1 = beta1; BETA2 = beta2; EPS = eps;
  LAYER0 = F + E;
  O_ROW = LAYER0 + 7 * H * L;
  DY_ROW = O_ROW + (SOFTMAX ? F + 1 : 1);
  REC = DY_ROW + E;
  STATE = 2 * H * L;
  return weightOffset(L) + (SOFTMAX ? F : 1) * (H + 1);
}

/** Rows of one step's record of one tile. */
export function recordRows(): i32 { return REC; }

/** Rows of one tile's state. */
export function stateRows(): i32 { return STATE; }

/** Inputs of LSTM layer l. */
// @ts-ignore: decorator
@inline function inDim(l: i32): i32 { return l == 0 ? (E > 0 ? E : F) : H; }

/** Columns of LSTM layer l's kernel: inputs, hidden, bias. */
// @ts-ignore: decorator
@inline function cols(l: i32): i32 { return inDim(l) + H + 1; }

/** Offset (floats) of LSTM layer l's kernel in the weight area; l = L gives the output kernel's. */
export function weightOffset(l: i32): i32 {
  let off = E > 0 ? E * (F + 1) : 0;
  for (let j: i32 = 0; j < l; j++) off += 4 * H * cols(j);
  return off;
}

/**
 * Copies the weight area `raw` (row-major, as the host writes it) to `W`, each LSTM layer's kernel interleaved:
 * W[((u·Kc + k)·4 + gate)] = raw[(gate·H + u)·Kc + k] (gates i, f, g, o). Everything else is copied as it is.
 */
export function packWeights(raw: usize, W: usize, total: i32): void {
  const first = weightOffset(0);
  memory.copy(W, raw, <usize>first << 2);
  for (let l: i32 = 0; l < L; l++) {
    const Kc = cols(l);
    const src = raw + (<usize>weightOffset(l) << 2);
    const dst = W + (<usize>weightOffset(l) << 2);
    for (let gate: i32 = 0; gate < 4; gate++) {
      for (let u: i32 = 0; u < H; u++) {
        const s = src + (<usize>((gate * H + u) * Kc) << 2);
        const d = dst + (<usize>(u * Kc * 4 + gate) << 2);
        for (let k: i32 = 0; k < Kc; k++) store<f32>(d + (<usize>k << 4), load<f32>(s + (<usize>k << 2)));
      }
    }
  }
  const last = weightOffset(L);
  memory.copy(W + (<usize>last << 2), raw + (<usize>last << 2), <usize>(total - last) << 2);
}

// @ts-ignore: decorator
@inline function layerRow(l: i32): i32 { return LAYER0 + 7 * H * l; }

// ---------------------------------------------------------------- vector math

// Constants in linear memory, each splatted to 4 lanes: a v128.const costs V8 several instructions per use.
const C: usize = memory.data<f32>([
  -7.99881172180175781, -7.99881172180175781, -7.99881172180175781, -7.99881172180175781, //   0 tanh clamp
  7.99881172180175781, 7.99881172180175781, 7.99881172180175781, 7.99881172180175781,     //  16
  // rational tanh x·P(x²)/Q(x²) (Eigen's generic_fast_tanh_float), absolute error ≤ 4e-7
  -2.76076847742355e-16, -2.76076847742355e-16, -2.76076847742355e-16, -2.76076847742355e-16, //  32 a13
  2.00018790482477e-13, 2.00018790482477e-13, 2.00018790482477e-13, 2.00018790482477e-13,     //  48 a11
  -8.60467152213735e-11, -8.60467152213735e-11, -8.60467152213735e-11, -8.60467152213735e-11, //  64 a9
  5.12229709037114e-08, 5.12229709037114e-08, 5.12229709037114e-08, 5.12229709037114e-08,     //  80 a7
  1.48572235717979e-05, 1.48572235717979e-05, 1.48572235717979e-05, 1.48572235717979e-05,     //  96 a5
  6.37261928875436e-04, 6.37261928875436e-04, 6.37261928875436e-04, 6.37261928875436e-04,     // 112 a3
  4.89352455891786e-03, 4.89352455891786e-03, 4.89352455891786e-03, 4.89352455891786e-03,     // 128 a1
  1.19825839466702e-06, 1.19825839466702e-06, 1.19825839466702e-06, 1.19825839466702e-06,     // 144 b6
  1.18534705686654e-04, 1.18534705686654e-04, 1.18534705686654e-04, 1.18534705686654e-04,     // 160 b4
  2.26843463243900e-03, 2.26843463243900e-03, 2.26843463243900e-03, 2.26843463243900e-03,     // 176 b2
  4.89352518554385e-03, 4.89352518554385e-03, 4.89352518554385e-03, 4.89352518554385e-03,     // 192 b0
  0.5, 0.5, 0.5, 0.5,                                                                         // 208
  1.0, 1.0, 1.0, 1.0,                                                                         // 224
  -15.997623443603516, -15.997623443603516, -15.997623443603516, -15.997623443603516,       // 240 σ lo
  15.997623443603516, 15.997623443603516, 15.997623443603516, 15.997623443603516,           // 256 σ hi
  -6.901920915759578e-17, -6.901920915759578e-17, -6.901920915759578e-17, -6.901920915759578e-17,// 272 σ a13/4
  2.0001879384549948e-13, 2.0001879384549948e-13, 2.0001879384549948e-13, 2.0001879384549948e-13,// 288 σ a11
  -3.441868734466169e-10, -3.441868734466169e-10, -3.441868734466169e-10, -3.441868734466169e-10,// 304 σ 4·a9
  8.19567560483847e-07, 8.19567560483847e-07, 8.19567560483847e-07, 8.19567560483847e-07,   // 320 σ 16·a7
  0.0009508623043075204, 0.0009508623043075204, 0.0009508623043075204, 0.0009508623043075204,// 336 σ 64·a5
  0.16313906013965607, 0.16313906013965607, 0.16313906013965607, 0.16313906013965607,       // 352 σ 256·a3
  5.010969161987305, 5.010969161987305, 5.010969161987305, 5.010969161987305,               // 368 σ 1024·a1
  7.66885350458324e-05, 7.66885350458324e-05, 7.66885350458324e-05, 7.66885350458324e-05,   // 384 σ 64·b6
  0.0303448848426342, 0.0303448848426342, 0.0303448848426342, 0.0303448848426342,           // 400 σ 256·b4
  2.3228771686553955, 2.3228771686553955, 2.3228771686553955, 2.3228771686553955,           // 416 σ 1024·b2
  20.04387855529785, 20.04387855529785, 20.04387855529785, 20.04387855529785,               // 432 σ 4096·b0
], 16);

// @ts-ignore: decorator
@inline function K(off: usize): v128 { return v128.load(C + off); }

// x·P(x²)/Q(x²) for x clamped to [lo, hi], with the constant block at `at`: lo, hi, P's coefficients from the
// highest, then Q's (the layout of the tanh block at 0 and of σ's at 240).
// @ts-ignore: decorator
@inline function vrational(x0: v128, at: usize): v128 {
  // pmax/pmin keep NaN (the first operand), so NaN inputs stay NaN as in tfjs; ±Inf clamp to the bounds.
  const x = f32x4.pmin(f32x4.pmax(x0, K(at)), K(at + 16));
  const x2 = f32x4.mul(x, x);
  let p = mac(K(at + 48), x2, K(at + 32));
  p = mac(K(at + 64), x2, p);
  p = mac(K(at + 80), x2, p);
  p = mac(K(at + 96), x2, p);
  p = mac(K(at + 112), x2, p);
  p = mac(K(at + 128), x2, p);
  let q = mac(K(at + 160), x2, K(at + 144));
  q = mac(K(at + 176), x2, q);
  q = mac(K(at + 192), x2, q);
  return f32x4.div(f32x4.mul(p, x), q);
}

// @ts-ignore: decorator
@inline function vtanh(x: v128): v128 {
  return vrational(x, 0);
}

// σ(x) = ½ + ½·tanh(x/2), with vtanh's rational function rewritten for x instead of x/2: x² = 4·(x/2)², so the
// numerator's coefficients scaled by 1/4, 1, 4, .., 4⁵ and the denominator's by 4³, .., 4⁶ give every Horner step
// the old one times a power of 2, and the quotient ½·tanh(x/2). Powers of 2 commute with float32 rounding (away
// from under- and overflow), so the results are bit-identical to ½ + ½·vtanh(x·½), without the multiply by ½ and
// with an add in place of the final multiply-add: 2 of 13 multiply-pipe operations less per σ.
// @ts-ignore: decorator
@inline function vsigmoid(x: v128): v128 {
  return f32x4.add(vrational(x, 240), K(208));
}

// ELU: x for x > 0, exp(x) − 1 otherwise.
// @ts-ignore: decorator
@inline function velu(x: v128): v128 {
  return v128.bitselect(x, f32x4.sub(vexp(x), K(224)), f32x4.gt(x, f32x4.splat(0)));
}

// ---------------------------------------------------------------- forward

// features of one tile: g (8 floats) → rows X of `x`; Adam moments at `mv` (rows m, v) updated in place.
function features(g: usize, x: usize, mv: usize, c1: f32, d2: f32): void {
  if (FEAT == 0) {
    v128.store(x, v128.load(g)); v128.store(x, v128.load(g, 16), 16);
  } else if (FEAT == 1) {
    const thr: f32 = Mathf.exp(-PK);
    const big: f32 = Mathf.exp(PK);
    for (let n: usize = 0; n < <usize>T; n++) {
      const gv = load<f32>(g + (n << 2));
      const a = Mathf.abs(gv);
      let x0: f32, x1: f32;
      // Same branches as tfjs's preprocessGradients: NaN fails the test and gives (−1, NaN).
      if (a >= thr) { x0 = Mathf.log(a) / PK; x1 = gv > 0 ? <f32>1.0 : <f32>-1.0; } else { x0 = -1.0; x1 = gv * big; }
      store<f32>(x + (n << 2), x0);
      store<f32>(x + RB + (n << 2), x1);
    }
  } else if (FEAT == 3) {
    multiscaleDirections(g, mv, F, PARAMS, EPS, x);
  } else {
    const b1 = f32x4.splat(BETA1), b2 = f32x4.splat(BETA2);
    const a1 = f32x4.splat(<f32>1.0 - BETA1), a2 = f32x4.splat(<f32>1.0 - BETA2);
    const vc1 = f32x4.splat(c1), vd2 = f32x4.splat(d2), eps = f32x4.splat(EPS);
    for (let off: usize = 0; off < 32; off += 16) {
      const gv = v128.load(g + off);
      const m = f32x4.add(f32x4.mul(v128.load(mv + off), b1), f32x4.mul(gv, a1));
      const v = f32x4.add(f32x4.mul(v128.load(mv + RB + off), b2), f32x4.mul(f32x4.mul(gv, gv), a2));
      v128.store(mv + off, m); v128.store(mv + RB + off, v);
      const inv = f32x4.div(K(224), f32x4.add(f32x4.sqrt(f32x4.div(v, vd2)), eps));
      v128.store(x + off, f32x4.mul(gv, inv));
      v128.store(x + RB + off, f32x4.mul(f32x4.mul(m, vc1), inv));
    }
  }
}

// y = ELU(W·[x; 1]) for E units from nIn rows at x.
function denseEluFwd(W: usize, nIn: i32, x: usize, y: usize): void {
  const kb: usize = <usize>(nIn + 1) << 2;
  for (let u: i32 = 0; u < E; u++) {
    const wu: usize = W + <usize>u * kb;
    let a0 = v128.load32_splat(wu + (<usize>nIn << 2)), a1 = a0;
    let zp = x;
    for (let k: i32 = 0; k < nIn; k++) {
      const w = v128.load32_splat(wu + (<usize>k << 2));
      a0 = mac(a0, w, v128.load(zp)); a1 = mac(a1, w, v128.load(zp, 16));
      zp += RB;
    }
    const yp = y + <usize>u * RB;
    v128.store(yp, velu(a0)); v128.store(yp, velu(a1), 16);
  }
}

// One LSTM layer for one tile: gates = W·[zA (nA rows); h (H rows at hPrev); 1]; writes gate activations
// (4H rows at outG), c', tanh c', h' (H rows each). Three passes: the matrix product writes pre-activations,
// then each activation and each cell update runs in a loop of its own. Short independent loop bodies let the
// CPU overlap the long dependency chains of tanh/σ across rows; computing them right after each unit's product
// (one chain after another) took 2-3× longer.
function cellFwd(W: usize, Kc: i32, zA: usize, nA: i32, hPrev: usize, cPrev: usize,
                 outG: usize, outC: usize, outTC: usize, outH: usize): void {
  const hb: usize = <usize>H * RB;
  for (let u: i32 = 0; u < H; u++) {
    // Packed weights (packWeights): unit u's gates i, f, g, o of column k at wp, wp + 4, wp + 8, wp + 12.
    let wp: usize = W + (<usize>(u * Kc) << 4);
    const wb: usize = wp + (<usize>(Kc - 1) << 4);
    let i0 = v128.load32_splat(wb), i1 = i0;
    let f0 = v128.load32_splat(wb, 4), f1 = f0;
    let g0 = v128.load32_splat(wb, 8), g1 = g0;
    let o0 = v128.load32_splat(wb, 12), o1 = o0;
    let zp = zA;
    let ze = zA + (<usize>nA << 5);
    for (; zp < ze; zp += RB) {
      const z0 = v128.load(zp), z1 = v128.load(zp, 16);
      let w = v128.load32_splat(wp); i0 = mac(i0, w, z0); i1 = mac(i1, w, z1);
      w = v128.load32_splat(wp, 4); f0 = mac(f0, w, z0); f1 = mac(f1, w, z1);
      w = v128.load32_splat(wp, 8); g0 = mac(g0, w, z0); g1 = mac(g1, w, z1);
      w = v128.load32_splat(wp, 12); o0 = mac(o0, w, z0); o1 = mac(o1, w, z1);
      wp += 16;
    }
    zp = hPrev;
    ze = hPrev + hb;
    for (; zp < ze; zp += RB) {
      const z0 = v128.load(zp), z1 = v128.load(zp, 16);
      let w = v128.load32_splat(wp); i0 = mac(i0, w, z0); i1 = mac(i1, w, z1);
      w = v128.load32_splat(wp, 4); f0 = mac(f0, w, z0); f1 = mac(f1, w, z1);
      w = v128.load32_splat(wp, 8); g0 = mac(g0, w, z0); g1 = mac(g1, w, z1);
      w = v128.load32_splat(wp, 12); o0 = mac(o0, w, z0); o1 = mac(o1, w, z1);
      wp += 16;
    }
    const ru: usize = <usize>u * RB;
    const rf: usize = ru + hb, rg: usize = rf + hb, ro: usize = rg + hb;
    v128.store(outG + ru, i0); v128.store(outG + rf, f0); v128.store(outG + rg, g0); v128.store(outG + ro, o0);
    v128.store(outG + ru, i1, 16); v128.store(outG + rf, f1, 16); v128.store(outG + rg, g1, 16); v128.store(outG + ro, o1, 16);
  }
  // σ over the i and f rows, tanh over g, σ over o.
  const gEnd = outG + 2 * hb;
  for (let p = outG; p < gEnd; p += 32) { const a = vsigmoid(v128.load(p)), b = vsigmoid(v128.load(p, 16)); v128.store(p, a); v128.store(p, b, 16); }
  for (let p = gEnd; p < gEnd + hb; p += 32) { const a = vtanh(v128.load(p)), b = vtanh(v128.load(p, 16)); v128.store(p, a); v128.store(p, b, 16); }
  for (let p = gEnd + hb; p < gEnd + 2 * hb; p += 32) { const a = vsigmoid(v128.load(p)), b = vsigmoid(v128.load(p, 16)); v128.store(p, a); v128.store(p, b, 16); }
  cellUpdate(outG, cPrev, outC, outTC, outH);
}

// The cell update from a layer's gate activations (4H rows at G): c' = σf·c + σi·tanh g, tanh c', h' = σo·tanh c'.
function cellUpdate(G: usize, cPrev: usize, outC: usize, outTC: usize, outH: usize): void {
  const hb: usize = <usize>H * RB;
  const rf: usize = hb, rg: usize = 2 * hb, ro: usize = 3 * hb;
  for (let r: usize = 0; r < hb; r += 16) {
    const c = f32x4.add(f32x4.mul(v128.load(G + rf + r), v128.load(cPrev + r)), f32x4.mul(v128.load(G + r), v128.load(G + rg + r)));
    v128.store(outC + r, c);
  }
  for (let r: usize = 0; r < hb; r += 32) {
    const ta = vtanh(v128.load(outC + r)), tb = vtanh(v128.load(outC + r, 16));
    v128.store(outTC + r, ta); v128.store(outTC + r, tb, 16);
    v128.store(outH + r, f32x4.mul(v128.load(G + ro + r), ta));
    v128.store(outH + r, f32x4.mul(v128.load(G + ro + r, 16), tb), 16);
  }
}

// Where the gate store keeps layer l's gates of `tile` at `step`, or 0 where it does not (no store, or the tile
// beyond the layer's count).
function storedGates(store: usize, cap: i32, l: i32, tile: i32, step: i32): usize {
  if (store == 0) return 0;
  const tileBytes: usize = <usize>cap * <usize>(4 * H) * RB;
  let p: usize = store + ((<usize>(4 * L) + 31) & ~<usize>31);
  for (let j: i32 = 0; j < l; j++) p += <usize>load<i32>(store + (<usize>j << 2)) * tileBytes;
  if (tile >= load<i32>(store + (<usize>l << 2))) return 0;
  return p + <usize>tile * tileBytes + <usize>step * <usize>(4 * H) * RB;
}

/** Bytes of the gate store per tile and layer for unrolls of up to `cap` steps. */
export function storeTileBytes(cap: i32): usize {
  return <usize>cap * <usize>(4 * H) * RB;
}

// The forward of one tile for one step, X already in `cur`. The previous state is read from `prev`, layer l's
// h and c at rows prevLayerRows·l and prevLayerRows·l + H. Writes the update (8 floats) to upd unless upd is 0.
// Layers whose gates the store holds for this tile and step (store != 0) take them from there.
function tileFwd(prev: usize, prevLayerRows: i32, cur: usize, W: usize, upd: usize, scale: f32,
                 store: usize, cap: i32, tile: i32, step: i32): void {
  let zin = cur;
  let nIn = F;
  if (E > 0) {
    denseEluFwd(W, F, cur, cur + <usize>F * RB);
    zin = cur + <usize>F * RB;
    nIn = E;
  }
  const hb: usize = <usize>H * RB;
  for (let l: i32 = 0; l < L; l++) {
    const pl = prev + <usize>(prevLayerRows * l) * RB;
    const lb = cur + <usize>layerRow(l) * RB;
    const sg = storedGates(store, cap, l, tile, step);
    if (sg != 0) {
      memory.copy(lb + 3 * hb, sg, 4 * hb);
      cellUpdate(lb + 3 * hb, pl + hb, lb + hb, lb + 2 * hb, lb);
    } else cellFwd(W + (<usize>weightOffset(l) << 2), cols(l), zin, nIn, pl, pl + hb, lb + 3 * hb, lb + hb, lb + 2 * hb, lb);
    zin = lb;
    nIn = H;
  }
  const wo = W + (<usize>weightOffset(L) << 2);
  if (SOFTMAX) {
    softmaxHead(wo, zin, cur, upd, scale);
    return;
  }
  let a0 = v128.load32_splat(wo + (<usize>H << 2)), a1 = a0;
  let hp = zin;
  for (let k: i32 = 0; k < H; k++) {
    const w = v128.load32_splat(wo + (<usize>k << 2));
    a0 = mac(a0, w, v128.load(hp)); a1 = mac(a1, w, v128.load(hp, 16));
    hp += RB;
  }
  if (OUT_TANH) {
    a0 = vtanh(a0); a1 = vtanh(a1);
    const op = cur + <usize>O_ROW * RB;
    v128.store(op, a0); v128.store(op, a1, 16);
  }
  if (upd != 0) {
    const s = f32x4.splat(scale);
    v128.store(upd, f32x4.mul(a0, s)); v128.store(upd, f32x4.mul(a1, s), 16);
  }
}

// The softmax head: F logits Wo·[h; 1] from the top layer's h (rows at top), w = softmax (F rows at O_ROW),
// ⟨w, x⟩ with the features x of the record (row O_ROW + F); the update scale·⟨w, x⟩ to upd unless upd is 0.
function softmaxHead(wo: usize, top: usize, cur: usize, upd: usize, scale: f32): void {
  const op = cur + <usize>O_ROW * RB;
  const dp = op + <usize>F * RB;
  softmaxCombine(wo, top, H, cur, F, op, dp);
  if (upd != 0) {
    const s = f32x4.splat(scale);
    v128.store(upd, f32x4.mul(v128.load(dp), s)); v128.store(upd, f32x4.mul(v128.load(dp, 16), s), 16);
  }
}

/**
 * One optimizer step for tiles [t0, t1): gradients at g (8 floats per tile, from tile 0), updates to upd (same
 * layout), state (STATE rows per tile, from tile 0) updated in place, moments (2F rows per tile) when the
 * features are Adam's. `cur` is a scratch record. If xs != 0 the tiles' features are also written there
 * (F rows per tile, from tile 0), for the backward pass, and, if store != 0, the gates the gate store holds for
 * step `step` of an unroll of up to `cap` steps. c1 = 1/(1 − β1^t), d2 = 1 − β2^t.
 */
export function forwardStep(t0: i32, t1: i32, g: usize, upd: usize, state: usize, moments: usize, cur: usize,
                            xs: usize, W: usize, c1: f32, d2: f32, store: usize, step: i32, cap: i32, scale: f32): void {
  const sb: usize = <usize>STATE * RB;
  const hb: usize = <usize>H * RB;
  for (let t: i32 = t0; t < t1; t++) {
    const tt = <usize>t;
    const st = state + tt * sb;
    features(g + tt * RB, cur, moments + tt * <usize>(2 * F) * RB, c1, d2);
    if (xs != 0) memory.copy(xs + tt * <usize>F * RB, cur, <usize>F * RB);
    tileFwd(st, 2 * H, cur, W, upd + tt * RB, scale, 0, 0, 0, 0);
    for (let l: i32 = 0; l < L; l++) {
      memory.copy(st + <usize>(2 * l) * hb, cur + <usize>layerRow(l) * RB, 2 * hb);
      const sg = storedGates(store, cap, l, t, step);
      if (sg != 0) memory.copy(sg, cur + <usize>layerRow(l) * RB + 3 * hb, 4 * hb);
    }
  }
}

// ---------------------------------------------------------------- backward

// One LSTM layer's cell backward for one tile: dh (H rows, consumed), dc (H rows: dc_t in, dc_{t−1} out),
// G (4H rows: activations in, pre-activation adjoints out), TC = tanh c_t, cPrev = c_{t−1}.
function cellBwd(dh: usize, dc: usize, G: usize, TC: usize, cPrev: usize): void {
  const one = K(224);
  const hb: usize = <usize>H * RB;
  for (let u: i32 = 0; u < H; u++) {
    const ru: usize = <usize>u * RB;
    const rf: usize = ru + hb, rg: usize = rf + hb, ro: usize = rg + hb;
    for (let off: usize = 0; off < 32; off += 16) {
      const dhv = v128.load(dh + ru + off);
      const i = v128.load(G + ru + off), f = v128.load(G + rf + off);
      const g = v128.load(G + rg + off), o = v128.load(G + ro + off);
      const tc = v128.load(TC + ru + off);
      const dcv = f32x4.add(v128.load(dc + ru + off), f32x4.mul(f32x4.mul(dhv, o), f32x4.sub(one, f32x4.mul(tc, tc))));
      v128.store(G + ru + off, f32x4.mul(f32x4.mul(dcv, g), f32x4.mul(i, f32x4.sub(one, i))));
      v128.store(G + rf + off, f32x4.mul(f32x4.mul(dcv, v128.load(cPrev + ru + off)), f32x4.mul(f, f32x4.sub(one, f))));
      v128.store(G + rg + off, f32x4.mul(f32x4.mul(dcv, i), f32x4.sub(one, f32x4.mul(g, g))));
      v128.store(G + ro + off, f32x4.mul(f32x4.mul(dhv, tc), f32x4.mul(o, f32x4.sub(one, o))));
      v128.store(dc + ru + off, f32x4.mul(dcv, f));
    }
  }
}

// out[k] (+)= Σ_j W[j][kOff + k]·da[j] for k in [0, nk), over an LSTM layer's 4H gate rows j = gate·H + u (da: 4H
// consecutive rows, gate-major), with W packed (packWeights): W[j][k] at ((u·Kc + k)·4 + gate) floats. The sum runs
// over j in ascending order, as before packing (the same float32 results). Rows of out are consecutive.
function dzT(W: usize, Kc: i32, kOff: i32, nk: i32, da: usize, out: usize, accumulate: bool): void {
  const unitBytes: usize = <usize>Kc << 4;
  let k: i32 = 0;
  for (; k + 4 <= nk; k += 4) {
    let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    let dp: usize = da;
    for (let gate: usize = 0; gate < 4; gate++) {
      let wp: usize = W + (<usize>(kOff + k) << 4) + (gate << 2);
      for (let u: i32 = 0; u < H; u++) {
        const d0 = v128.load(dp), d1 = v128.load(dp, 16);
        let w = v128.load32_splat(wp); a00 = mac(a00, w, d0); a01 = mac(a01, w, d1);
        w = v128.load32_splat(wp, 16); a10 = mac(a10, w, d0); a11 = mac(a11, w, d1);
        w = v128.load32_splat(wp, 32); a20 = mac(a20, w, d0); a21 = mac(a21, w, d1);
        w = v128.load32_splat(wp, 48); a30 = mac(a30, w, d0); a31 = mac(a31, w, d1);
        wp += unitBytes; dp += RB;
      }
    }
    const op = out + <usize>k * RB;
    if (accumulate) {
      a00 = f32x4.add(a00, v128.load(op)); a01 = f32x4.add(a01, v128.load(op, 16));
      a10 = f32x4.add(a10, v128.load(op, 32)); a11 = f32x4.add(a11, v128.load(op, 48));
      a20 = f32x4.add(a20, v128.load(op, 64)); a21 = f32x4.add(a21, v128.load(op, 80));
      a30 = f32x4.add(a30, v128.load(op, 96)); a31 = f32x4.add(a31, v128.load(op, 112));
    }
    v128.store(op, a00); v128.store(op, a01, 16); v128.store(op, a10, 32); v128.store(op, a11, 48);
    v128.store(op, a20, 64); v128.store(op, a21, 80); v128.store(op, a30, 96); v128.store(op, a31, 112);
  }
  for (; k < nk; k++) {
    let a0 = f32x4.splat(0), a1 = a0;
    let dp: usize = da;
    for (let gate: usize = 0; gate < 4; gate++) {
      let wp: usize = W + (<usize>(kOff + k) << 4) + (gate << 2);
      for (let u: i32 = 0; u < H; u++) {
        const w = v128.load32_splat(wp);
        a0 = mac(a0, w, v128.load(dp)); a1 = mac(a1, w, v128.load(dp, 16));
        wp += unitBytes; dp += RB;
      }
    }
    const op = out + <usize>k * RB;
    if (accumulate) { a0 = f32x4.add(a0, v128.load(op)); a1 = f32x4.add(a1, v128.load(op, 16)); }
    v128.store(op, a0); v128.store(op, a1, 16);
  }
}

// Row k of z at step t of an unroll whose records start at rec0 (record 0 the initial state): z = [nA rows of
// record t + 1 from row zA; rows of record t from row zB], as a pointer into record 1 (step 0).
// @ts-ignore: decorator
@inline function zRow(rec0: usize, recBytes: usize, k: i32, zA: i32, nA: i32, zB: i32): usize {
  return k < nA ? rec0 + recBytes + <usize>(zA + k) * RB : rec0 + <usize>(zB + k - nA) * RB;
}

// acc[j][k] (v128 lane partial sums, row-major [nDa][nA + nB + 1]) += Σ over steps t = 0..U−1 and both vectors of
// da_t[j]·z_t[k] (last column: z = 1), da_t = rows daRow.. of record t + 1.
function dWAccum(acc: usize, rec0: usize, recBytes: usize, U: i32, daRow: i32, nDa: i32, zA: i32, nA: i32, zB: i32, nB: i32): void {
  const nk = nA + nB;
  const Kc = nk + 1;
  const rowAcc: usize = <usize>Kc << 4;
  let j: i32 = 0;
  for (; j + 4 <= nDa; j += 4) {
    const d0p: usize = rec0 + recBytes + <usize>(daRow + j) * RB;
    let k: i32 = 0;
    for (; k + 2 <= nk; k += 2) {
      let a00 = f32x4.splat(0), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
      let zp0 = zRow(rec0, recBytes, k, zA, nA, zB);
      let zp1 = zRow(rec0, recBytes, k + 1, zA, nA, zB);
      let dp = d0p;
      for (let t: i32 = 0; t < U; t++) {
        for (let off: usize = 0; off < 32; off += 16) {
          const z0 = v128.load(zp0 + off), z1 = v128.load(zp1 + off);
          let d = v128.load(dp + off); a00 = mac(a00, d, z0); a01 = mac(a01, d, z1);
          d = v128.load(dp + RB + off); a10 = mac(a10, d, z0); a11 = mac(a11, d, z1);
          d = v128.load(dp + 2 * RB + off); a20 = mac(a20, d, z0); a21 = mac(a21, d, z1);
          d = v128.load(dp + 3 * RB + off); a30 = mac(a30, d, z0); a31 = mac(a31, d, z1);
        }
        zp0 += recBytes; zp1 += recBytes; dp += recBytes;
      }
      let ap: usize = acc + ((<usize>(j * Kc + k)) << 4);
      v128.store(ap, f32x4.add(v128.load(ap), a00)); v128.store(ap, f32x4.add(v128.load(ap, 16), a01), 16); ap += rowAcc;
      v128.store(ap, f32x4.add(v128.load(ap), a10)); v128.store(ap, f32x4.add(v128.load(ap, 16), a11), 16); ap += rowAcc;
      v128.store(ap, f32x4.add(v128.load(ap), a20)); v128.store(ap, f32x4.add(v128.load(ap, 16), a21), 16); ap += rowAcc;
      v128.store(ap, f32x4.add(v128.load(ap), a30)); v128.store(ap, f32x4.add(v128.load(ap, 16), a31), 16);
    }
    for (; k < nk; k++) {
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
      let zp = zRow(rec0, recBytes, k, zA, nA, zB);
      let dp = d0p;
      for (let t: i32 = 0; t < U; t++) {
        for (let off: usize = 0; off < 32; off += 16) {
          const z = v128.load(zp + off);
          a0 = mac(a0, v128.load(dp + off), z); a1 = mac(a1, v128.load(dp + RB + off), z);
          a2 = mac(a2, v128.load(dp + 2 * RB + off), z); a3 = mac(a3, v128.load(dp + 3 * RB + off), z);
        }
        zp += recBytes; dp += recBytes;
      }
      let ap: usize = acc + ((<usize>(j * Kc + k)) << 4);
      v128.store(ap, f32x4.add(v128.load(ap), a0)); ap += rowAcc;
      v128.store(ap, f32x4.add(v128.load(ap), a1)); ap += rowAcc;
      v128.store(ap, f32x4.add(v128.load(ap), a2)); ap += rowAcc;
      v128.store(ap, f32x4.add(v128.load(ap), a3));
    }
  }
  for (; j < nDa; j++) {
    const dp0: usize = rec0 + recBytes + <usize>(daRow + j) * RB;
    for (let k: i32 = 0; k < nk; k++) {
      let a = f32x4.splat(0);
      let zp = zRow(rec0, recBytes, k, zA, nA, zB);
      let dp = dp0;
      for (let t: i32 = 0; t < U; t++) {
        a = mac(a, v128.load(dp), v128.load(zp));
        a = mac(a, v128.load(dp, 16), v128.load(zp, 16));
        zp += recBytes; dp += recBytes;
      }
      const ap: usize = acc + ((<usize>(j * Kc + k)) << 4);
      v128.store(ap, f32x4.add(v128.load(ap), a));
    }
  }
  // bias column
  for (let r: i32 = 0; r < nDa; r++) {
    let b = f32x4.splat(0);
    let dp: usize = rec0 + recBytes + <usize>(daRow + r) * RB;
    for (let t: i32 = 0; t < U; t++) {
      b = f32x4.add(b, f32x4.add(v128.load(dp), v128.load(dp, 16)));
      dp += recBytes;
    }
    const ap: usize = acc + ((<usize>(r * Kc + nk)) << 4);
    v128.store(ap, f32x4.add(v128.load(ap), b));
  }
}

// One output row's backward for one tile: with e the adjoint of its pre-activation (two vectors), dh_top += e·w
// (w: the row's H weights at wr, then its bias) and the row's accumulators at ar += e·[h_top; 1].
// @ts-ignore: decorator
@inline function outputRowBwd(wr: usize, ar: usize, top: usize, dhTop: usize, e0: v128, e1: v128): void {
  for (let k: i32 = 0; k < H; k++) {
    const w = v128.load32_splat(wr + (<usize>k << 2));
    const dq = dhTop + <usize>k * RB;
    v128.store(dq, mac(v128.load(dq), w, e0)); v128.store(dq, mac(v128.load(dq, 16), w, e1), 16);
    const hp = top + <usize>k * RB;
    const aq = ar + (<usize>k << 4);
    v128.store(aq, mac(mac(v128.load(aq), e0, v128.load(hp)), e1, v128.load(hp, 16)));
  }
  const aq = ar + (<usize>H << 4);
  v128.store(aq, f32x4.add(v128.load(aq), f32x4.add(e0, e1)));
}

/** Bytes of scratch one thread's `backward` needs for unrolls of U steps. */
export function scratchBytes(U: i32): usize {
  return <usize>(2 * H * L + E + 1) * RB + <usize>(U + 1) * <usize>REC * RB;
}

/**
 * The weight gradients of tiles [t0, t1) over an unroll of U steps, accumulated (added) into acc (one v128 per
 * weight, the weight area's layout). init: the state at the unroll's start (STATE rows per tile, from tile 0);
 * xs: the features of step t of tile tl at xs + (t·nt + tl)·F rows; D: ∂L/∂θ_{t+1} of coordinate c at
 * D + (t·npad + c) floats; scr: scratchBytes(U) bytes of this thread's own; store: the gate store forwardStep
 * filled, laid out for unrolls of up to `cap` steps (0: none).
 */
export function backward(t0: i32, t1: i32, nt: i32, U: i32, init: usize, xs: usize, D: usize, W: usize, scr: usize, acc: usize,
                         store: usize, cap: i32, scale: f32): void {
  const npad: usize = <usize>nt * <usize>T;
  const recB: usize = <usize>REC * RB;
  const hb: usize = <usize>H * RB;
  const dh = scr;
  const dc = scr + <usize>L * hb;
  const dY = scr + <usize>(2 * L) * hb;
  const run = dY + <usize>E * RB;
  const scrRec0 = run + RB;
  const wo = W + (<usize>weightOffset(L) << 2);
  const accO = acc + (<usize>weightOffset(L) << 4);
  // Softmax head: Σ_t ⟨r_t, ⟨w, x⟩_t⟩ in the accumulator after the weights' (for ∂L/∂scale).
  const accS = accO + (<usize>(F * (H + 1)) << 4);
  const sc = f32x4.splat(scale);
  const one = K(224);
  for (let tl: i32 = t0; tl < t1; tl++) {
    const rec0 = scrRec0;
    // Rebuild the tile's records: record 0 holds the initial state in its layer blocks.
    const st = init + <usize>tl * <usize>STATE * RB;
    for (let l: i32 = 0; l < L; l++) memory.copy(rec0 + <usize>layerRow(l) * RB, st + <usize>(2 * l) * hb, 2 * hb);
    for (let t: i32 = 0; t < U; t++) {
      const cur = rec0 + <usize>(t + 1) * recB;
      memory.copy(cur, xs + (<usize>t * <usize>nt + <usize>tl) * <usize>F * RB, <usize>F * RB);
      tileFwd(cur - recB + <usize>LAYER0 * RB, 7 * H, cur, W, 0, scale, store, cap, tl, t);
    }
    memory.fill(scr, 0, <usize>(2 * L) * hb + <usize>E * RB + RB);
    for (let t: i32 = U - 1; t >= 0; t--) {
      const cur = rec0 + <usize>(t + 1) * recB;
      const prv = cur - recB;
      // ∂L/∂update_t = Σ_{s ≥ t} D_s (θ_{s+1} = θ_t + update_t + ...).
      const dp = D + ((<usize>t * npad + <usize>tl * <usize>T) << 2);
      const r0 = f32x4.add(v128.load(run), v128.load(dp)), r1 = f32x4.add(v128.load(run, 16), v128.load(dp, 16));
      v128.store(run, r0); v128.store(run, r1, 16);
      const top = cur + <usize>layerRow(L - 1) * RB;
      const dhTop = dh + <usize>(L - 1) * hb;
      if (SOFTMAX) {
        // update = scale·⟨w, x⟩, w = softmax(a): ∂L/∂a_j = scale·r·w_j·(x_j − ⟨w, x⟩) (x: constants of φ).
        const op = cur + <usize>O_ROW * RB;
        const dir0 = v128.load(op + <usize>F * RB), dir1 = v128.load(op + <usize>F * RB, 16);
        v128.store(accS, mac(mac(v128.load(accS), r0, dir0), r1, dir1));
        const q0 = f32x4.mul(r0, sc), q1 = f32x4.mul(r1, sc);
        const h1: usize = <usize>(H + 1) << 2;
        for (let j: i32 = 0; j < F; j++) {
          const jo = <usize>j * RB;
          const e0 = f32x4.mul(f32x4.mul(q0, v128.load(op + jo)), f32x4.sub(v128.load(cur + jo), dir0));
          const e1 = f32x4.mul(f32x4.mul(q1, v128.load(op + jo, 16)), f32x4.sub(v128.load(cur + jo, 16), dir1));
          outputRowBwd(wo + <usize>j * h1, accO + (<usize>(j * (H + 1)) << 4), top, dhTop, e0, e1);
        }
      } else {
        let s0 = f32x4.mul(r0, sc), s1 = f32x4.mul(r1, sc);
        if (OUT_TANH) {
          const op = cur + <usize>O_ROW * RB;
          const o0 = v128.load(op), o1 = v128.load(op, 16);
          s0 = f32x4.mul(s0, f32x4.sub(one, f32x4.mul(o0, o0)));
          s1 = f32x4.mul(s1, f32x4.sub(one, f32x4.mul(o1, o1)));
        }
        outputRowBwd(wo, accO, top, dhTop, s0, s1);
      }
      for (let l: i32 = L - 1; l >= 0; l--) {
        const lb = cur + <usize>layerRow(l) * RB;
        const pl = prv + <usize>layerRow(l) * RB;
        const Wl = W + (<usize>weightOffset(l) << 2);
        const Kc = cols(l);
        const dhl = dh + <usize>l * hb;
        const G = lb + 3 * hb;
        cellBwd(dhl, dc + <usize>l * hb, G, lb + 2 * hb, pl + hb);
        if (l > 0) dzT(Wl, Kc, 0, H, G, dh + <usize>(l - 1) * hb, true);
        else if (E > 0) dzT(Wl, Kc, 0, E, G, dY, false);
        dzT(Wl, Kc, inDim(l), H, G, dhl, false);
      }
      if (E > 0) {
        // Adjoint of the input layer's pre-activation: ELU'(a) = 1 where y > 0, else y + 1.
        const yp = cur + <usize>F * RB;
        const dyOut = cur + <usize>DY_ROW * RB;
        const zero = f32x4.splat(0);
        for (let u: i32 = 0; u < E; u++) {
          const ru: usize = <usize>u * RB;
          for (let off: usize = 0; off < 32; off += 16) {
            const y = v128.load(yp + ru + off);
            const d = v128.bitselect(one, f32x4.add(y, one), f32x4.gt(y, zero));
            v128.store(dyOut + ru + off, f32x4.mul(v128.load(dY + ru + off), d));
          }
        }
      }
    }
    for (let l: i32 = 0; l < L; l++) {
      const inRow = l == 0 ? (E > 0 ? F : 0) : layerRow(l - 1);
      dWAccum(acc + (<usize>weightOffset(l) << 4), rec0, recB, U, layerRow(l) + 3 * H, 4 * H, inRow, inDim(l), layerRow(l), H);
    }
    if (E > 0) dWAccum(acc, rec0, recB, U, DY_ROW, E, 0, F, 0, 0);
  }
}
