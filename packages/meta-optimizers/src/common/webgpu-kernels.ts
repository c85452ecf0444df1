import * as tf from '@tensorflow/tfjs-core';

/*
 * Our GPU programs for tfjs's webgpu backend: where a learned optimizer's step is many small elementwise ops, each
 * a launch, one program does their work. For a coordinatewise optimizer's small tensors launches, not arithmetic,
 * set a GPU's pace.
 * - The LSTM cell's gates, one program each way: unfused they take 15 programs forward (slices, three σ, two
 *   tanh, products, a sum, a concat) and about 20 backward. The formulas are tfjs-webgpu's own σ and tanh, in the
 *   order lstm-cell.ts computes them.
 * - logAndSign preprocessing (preprocess.ts): 11 programs unfused.
 * - Columns cut into chunks for sumOfOuterProducts, the weight gradients' long sums (one copy for tfjs's pad and
 *   transpose).
 * - A whole `lstm` or `rnnprop` update where no gradient is taken (evaluation, a tf.Optimizer's steps, ES's
 *   forward passes; gpu-step.ts): an evaluation step on a quadratic is 16 programs instead of 23 for `lstm`, 19
 *   instead of 41 for `rnnprop` (`webgpu-programs.js 8 20 --eval`). On a tape with first-order meta-gradients, the
 *   update and its gradient (lstmStackStepGrad): `lstm`'s 58 programs per step of meta-training are 38.
 *
 * The programs follow tfjs-backend-webgpu 4.22's program objects (variable names as storage buffers, `uniforms`
 * with each input's shape, `setOutputAtIndex`); the tests compare them with the unfused ops on the same backend.
 */

/** [h'; c'] ([2H, N]) from the gates' pre-activations a = K·[x; h; 1] ([4H, N], rows i, f, g, o) and c ([H, N]). */
export const LSTM_GATES = 'L2lLstmGates';
/**
 * From a, c and dy = [dh'; dc'] ([2H, N]): [da; dc] ([5H, N]), the pre-activations' adjoint (rows i, f, g, o)
 * and the previous cell state's.
 */
export const LSTM_GATES_GRAD = 'L2lLstmGatesGrad';

/** x ([R, N]) as [B, R, C] chunks of C columns, zeros past column N (sumOfOuterProducts): one copy, not a pad and a transpose. */
export const CHUNK_COLUMNS = 'L2lChunkColumns';

/** [log(max(|g|, e^−k))/k or −1; sign(g) or e^k·g] ([2, N]) from a gradient row g ([1, N]): preprocess.ts's logAndSign. */
export const LOG_AND_SIGN = 'L2lLogAndSign';

/**
 * A whole update of an LSTM-stack optimizer (`lstm`, `rnnprop`) for every coordinate (see lstmStackStep):
 * [update; m'; v' (Adam features only); h'; c' of each layer] from g (with m and v: [3, N]), φ flattened into one
 * row, and each layer's h and c.
 */
export const LSTM_STACK_STEP = 'L2lLstmStackStep';

/**
 * LSTM_STACK_STEP's gradient, first order (g, m and v constants): from the step's inputs and dy (the adjoint of its
 * output), [dh; dc of each layer's input state; da and z of each layer; the input layer's (if any); the output's
 * d and [h_top; 1]], from which the weights' gradients are one product each (lstmStackStepGradRows).
 */
export const LSTM_STACK_STEP_GRAD = 'L2lLstmStackStepGrad';

/**
 * The most LSTM layers LSTM_STACK_STEP takes: its inputs (g, φ, h and c per layer) and its output are storage
 * buffers, of which WebGPU guarantees 8 per program (tfjs asks for no more).
 */
export const LSTM_STACK_STEP_MAX_LAYERS = 2;

const WORKGROUP = 64;

const ACTIVATIONS = `
  fn l2lSigmoid(a : f32) -> f32 { return 1.0 / (1.0 + exp(-1.0 * a)); }
  fn l2lTanh(a : f32) -> f32 {
    let e2x = exp(-2.0 * abs(a));
    return sign(a) * (1.0 - e2x) / (1.0 + e2x);
  }`;

// Row r, column j of the output; the gates of unit u at column j; c' as lstm-cell.ts adds it.
const GATES = `
    let hidden = uniforms.cShape[0];
    let n = uniforms.cShape[1];
    let r = index / n;
    let j = index - r * n;
    let u = r % hidden;
    let gi = l2lSigmoid(A[u * n + j]);
    let gf = l2lSigmoid(A[(hidden + u) * n + j]);
    let gg = l2lTanh(A[(2 * hidden + u) * n + j]);
    let go = l2lSigmoid(A[(3 * hidden + u) * n + j]);
    let cp = C[u * n + j];
    let c2 = gf * cp + gi * gg;`;

const FORWARD = `${ACTIVATIONS}
  fn main(index : i32) {
    if (index < uniforms.size) {${GATES}
      if (r < hidden) {
        setOutputAtIndex(index, go * l2lTanh(c2));
      } else {
        setOutputAtIndex(index, c2);
      }
    }
  }`;

const BACKWARD = `${ACTIVATIONS}
  fn main(index : i32) {
    if (index < uniforms.size) {${GATES}
      let tc = l2lTanh(c2);
      let dh2 = DY[u * n + j];
      let dc2 = DY[(hidden + u) * n + j] + dh2 * go * (1.0 - tc * tc);
      let gate = r / hidden;
      var v = 0.0;
      if (gate == 0) {
        v = dc2 * gg * (gi * (1.0 - gi));
      } else if (gate == 1) {
        v = dc2 * cp * (gf * (1.0 - gf));
      } else if (gate == 2) {
        v = dc2 * gi * (1.0 - gg * gg);
      } else if (gate == 3) {
        v = dh2 * tc * (go * (1.0 - go));
      } else {
        v = dc2 * gf;
      }
      setOutputAtIndex(index, v);
    }
  }`;

// The same branches as preprocess.ts: NaN fails the comparison and gives (−1, NaN); |g| = ∞ gives (∞, ±1).
const LOG_AND_SIGN_CODE = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let n = uniforms.gShape[1];
      let j = index % n;
      let g = G[j];
      let big = abs(g) >= uniforms.threshold;
      if (index < n) {
        setOutputAtIndex(index, select(-1.0, log(max(abs(g), uniforms.threshold)) / uniforms.k, big));
      } else {
        setOutputAtIndex(index, select(g * uniforms.ek, sign(g), big));
      }
    }
  }`;

const CHUNK_COLUMNS_CODE = `
  fn main(index : i32) {
    if (index < uniforms.size) {
      let rows = uniforms.xShape[0];
      let n = uniforms.xShape[1];
      let per = rows * uniforms.chunk;
      let b = index / per;
      let r = (index - b * per) / uniforms.chunk;
      let col = b * uniforms.chunk + index % uniforms.chunk;
      setOutputAtIndex(index, select(0.0, X[r * n + min(col, n - 1)], col < n));
    }
  }`;

/** What LSTM_STACK_STEP computes: the optimizer's shape (sizes are baked into its code). */
export interface LstmStackStepSpec {
  hidden: number;
  /** 1 to LSTM_STACK_STEP_MAX_LAYERS. */
  layers: number;
  /** The gradient's features: itself, preprocess.ts's logAndSign, or rnnprop's Adam-normalised pair. */
  features: 'none' | 'logAndSign' | 'adam';
  /** Units of an ELU layer between the features and the LSTM (rnnprop's); 0: none. */
  inputUnits: number;
  /** tanh on the output (rnnprop's). */
  outputTanh: boolean;
}

/** The float32 constants of one step (the uniforms; those a spec does not use are 0). */
export interface LstmStackStepConstants {
  /** The update's factor: lstm's outputScale, rnnprop's −lr. */
  scale: number;
  /** logAndSign's k. */
  k?: number;
  /** Adam features: β1, β2, ε and the step t (1-based). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  t?: number;
}

const STEP_UNIFORMS = 'k : f32, threshold : f32, ek : f32, scale : f32, b1 : f32, a1 : f32, b2 : f32, a2 : f32, c1 : f32, c2 : f32, eps : f32, zero : i32,';

/** logAndSign's k, its threshold e^−k and e^k, as preprocess.ts's float32 scalars hold them (LOG_AND_SIGN, STEP_FEATURES). */
function logAndSignConstants(k: number): [number, number, number] {
  return [k, Math.exp(-k), Math.exp(k)];
}

/** The uniforms' values, as the ops' float32 scalars hold them (the ops compute them in float64 first). */
function stepUniforms(c: LstmStackStepConstants): number[] {
  const b1 = c.beta1 ?? 0;
  const b2 = c.beta2 ?? 0;
  const t = c.t ?? 1;
  const adam = c.beta1 !== undefined;
  return [...(c.k ? logAndSignConstants(c.k) : [0, 0, 0]), c.scale, b1, 1 - b1, b2, 1 - b2, adam ? 1 / (1 - b1 ** t) : 0, adam ? 1 - b2 ** t : 0, c.epsilon ?? 0];
}

/**
 * The features of g into x[0..F), in the ops' order: preprocess.ts (logAndSign: LOG_AND_SIGN_CODE's branches),
 * rnnprop.ts's moments (m', v': the step writes them to rows 1 and 2) and normalisation.
 */
const STEP_FEATURES: Record<LstmStackStepSpec['features'], string> = {
  none: `
      x[0] = g;`,
  logAndSign: `
      let big = abs(g) >= uniforms.threshold;
      x[0] = select(-1.0, log(max(abs(g), uniforms.threshold)) / uniforms.k, big);
      x[1] = select(g * uniforms.ek, sign(g), big);`,
  adam: `
      let m = G[n + index] * uniforms.b1 + g * uniforms.a1;
      let v = G[2 * n + index] * uniforms.b2 + (g * g) * uniforms.a2;
      let inv = 1.0 / (sqrt(v / uniforms.c2) + uniforms.eps);
      x[0] = g * inv;
      x[1] = (m * uniforms.c1) * inv;`,
};

/**
 * Where an LSTM-stack step's parts sit, for its program, its gradient's and their callers: F features, E input
 * units (0: no input layer), `head` rows of the step's output before the state (the update; m' and v' with Adam
 * features), per LSTM layer its input size X, z's size Z = X + H + 1, its kernel's offset in φ's row and the
 * step output's row of its h' (c' follows), and the output layer's offset in φ's row.
 */
export function lstmStackLayout(spec: LstmStackStepSpec): {
  F: number;
  E: number;
  head: number;
  layers: Array<{ X: number; Z: number; offset: number; out: number }>;
  outputOffset: number;
  stepRows: number;
} {
  const { hidden: H, inputUnits: E } = spec;
  const F = spec.features === 'none' ? 1 : 2;
  const head = spec.features === 'adam' ? 3 : 1;
  let offset = E > 0 ? E * (F + 1) : 0;
  const layers = Array.from({ length: spec.layers }, (_, l) => {
    const X = l > 0 ? H : E > 0 ? E : F;
    const layer = { X, Z: X + H + 1, offset, out: head + 2 * H * l };
    offset += 4 * H * layer.Z;
    return layer;
  });
  return { F, E, head, layers, outputOffset: offset, stepRows: head + 2 * H * spec.layers };
}

/** The start of LSTM_STACK_STEP's and its gradient's main(): one invocation per coordinate, its features in x. */
function stepHead(spec: LstmStackStepSpec): string {
  return `${ACTIVATIONS}
  fn main(index : i32) {
    let n = uniforms.gShape[1];
    if (index < n) {
      let g = G[index];
      var x : array<f32, ${spec.features === 'none' ? 1 : 2}>;${STEP_FEATURES[spec.features]}`;
}

/** The ELU input layer (rnnprop's) in WGSL: y = ELU(W_in·[x; 1]) for its E units, W_in at the start of φ's row. */
function inputLayerCode(E: number, F: number): string {
  return `
      var y : array<f32, ${E}>;
      for (var e = 0; e < ${E}; e++) {
        var d = 0.0;
        for (var f = 0; f < ${F}; f++) { d = d + W[e * ${F + 1} + f] * x[f]; }
        d = d + W[e * ${F + 1} + ${F}];
        y[e] = select(exp(d) - 1.0, d, d >= 0.0);
      }`;
}

/**
 * One LSTM layer's forward pass in WGSL: z = [input; h of the layer's state; 1] into `z{l}`, then per unit u the
 * gates' pre-activations a (vec4: i, f, g, o) from the kernel at `offset` of φ's row, followed by `body` (which
 * reads u and a). The loops' bounds add uniforms.zero (0), which the compiler cannot see through: Mesa's software
 * device unrolled `lstm`'s constant-bound loops into a 50 s compile (1 s with this); the gradient's loops too.
 */
function layerForwardCode(l: number, X: number, H: number, offset: number, input: string, body: string): string {
  const Z = X + H + 1;
  return `
      var z${l} : array<f32, ${Z}>;
      for (var u = 0; u < ${X}; u++) { z${l}[u] = ${input}[u]; }
      for (var u = 0; u < ${H}; u++) { z${l}[${X} + u] = H${l}[u * n + index]; }
      z${l}[${X + H}] = 1.0;
      for (var u = 0; u < ${H} + uniforms.zero; u++) {
        var a = vec4<f32>(0.0);
        for (var k = 0; k < ${Z} + uniforms.zero; k++) {
          let r = ${offset} + u * ${Z} + k;
          a = a + vec4<f32>(W[r], W[r + ${H * Z}], W[r + ${2 * H * Z}], W[r + ${3 * H * Z}]) * z${l}[k];
        }${body}
      }`;
}

/** The output layer's pre-activation d = w·[top; 1] in WGSL, w at `offset` of φ's row. */
function outputPreActivationCode(H: number, offset: number, top: string): string {
  return `
      var d = 0.0;
      for (var u = 0; u < ${H}; u++) { d = d + W[${offset} + u] * ${top}[u]; }
      d = d + W[${offset + H}];`;
}

/**
 * LSTM_STACK_STEP's code (sizes baked in: one invocation per coordinate, its vectors in private arrays). φ's row
 * holds the input layer's [E, F + 1] kernel (if any), each LSTM layer's [4H, X + H + 1] (rows i, f, g, o;
 * columns x, h, bias), then the output's [1, H + 1] (lstmStackLayout). Products sum over the columns in order;
 * the gates are LSTM_GATES' formulas, ELU and tanh tfjs-webgpu's.
 */
function lstmStackStepCode(spec: LstmStackStepSpec): string {
  const { hidden: H, outputTanh } = spec;
  const { F, E, layers, outputOffset } = lstmStackLayout(spec);
  let code = stepHead(spec);
  if (spec.features === 'adam') {
    code += `
      setOutputAtIndex(n + index, m);
      setOutputAtIndex(2 * n + index, v);`;
  }
  if (E > 0) code += inputLayerCode(E, F);
  code += `
      var top : array<f32, ${H}>;`;
  layers.forEach(({ X, offset, out }, l) => {
    // top: layer l − 1's h' while layer l's z is filled, then layer l's.
    code += layerForwardCode(l, X, H, offset, l > 0 ? 'top' : E > 0 ? 'y' : 'x', `
        let c2 = l2lSigmoid(a.y) * C${l}[u * n + index] + l2lSigmoid(a.x) * l2lTanh(a.z);
        let h2 = l2lSigmoid(a.w) * l2lTanh(c2);
        setOutputAtIndex((${out} + u) * n + index, h2);
        setOutputAtIndex((${out + H} + u) * n + index, c2);
        top[u] = h2;`);
  });
  code += `${outputPreActivationCode(H, outputOffset, 'top')}
      setOutputAtIndex(index, ${outputTanh ? 'l2lTanh(d)' : 'd'} * uniforms.scale);
    }
  }`;
  return code;
}

/** Where LSTM_STACK_STEP_GRAD's output keeps each part: first rows (and, for da and z, row counts). */
export function lstmStackStepGradRows(spec: LstmStackStepSpec): {
  dh: number[];
  dc: number[];
  da: number[];
  z: number[];
  zRows: number[];
  /** The input layer's pre-activation adjoint (E rows) and its z = [x; 1] (F + 1 rows); −1 without one. */
  daIn: number;
  zIn: number;
  zInRows: number;
  dOut: number;
  zTop: number;
  rows: number;
} {
  const H = spec.hidden;
  const { F, E, layers } = lstmStackLayout(spec);
  const dh = layers.map((_, l) => 2 * H * l);
  const dc = dh.map((r) => r + H);
  const da: number[] = [];
  const z: number[] = [];
  let row = 2 * H * layers.length;
  for (const { Z } of layers) {
    da.push(row);
    z.push(row + 4 * H);
    row += 4 * H + Z;
  }
  const daIn = E > 0 ? row : -1;
  const zIn = E > 0 ? row + E : -1;
  if (E > 0) row += E + F + 1;
  return { dh, dc, da, z, zRows: layers.map((layer) => layer.Z), daIn, zIn, zInRows: F + 1, dOut: row, zTop: row + 1, rows: row + H + 2 };
}

/**
 * LSTM_STACK_STEP_GRAD's code: the forward pass of LSTM_STACK_STEP again, keeping each layer's z, gates, c and
 * tanh c per coordinate, then the backward pass through the output and the layers (top first), as
 * LSTM_GATES_GRAD's formulas and Kᵀ·da.
 */
function lstmStackStepGradCode(spec: LstmStackStepSpec): string {
  const { hidden: H, outputTanh } = spec;
  const { F, E, layers, outputOffset } = lstmStackLayout(spec);
  const rows = lstmStackStepGradRows(spec);
  let code = stepHead(spec);
  if (E > 0) code += inputLayerCode(E, F);
  layers.forEach(({ X, offset }, l) => {
    code += `
      var gi${l} : array<f32, ${H}>;
      var gf${l} : array<f32, ${H}>;
      var gg${l} : array<f32, ${H}>;
      var go${l} : array<f32, ${H}>;
      var cp${l} : array<f32, ${H}>;
      var tc${l} : array<f32, ${H}>;
      var hn${l} : array<f32, ${H}>;`;
    code += layerForwardCode(l, X, H, offset, l > 0 ? `hn${l - 1}` : E > 0 ? 'y' : 'x', `
        gi${l}[u] = l2lSigmoid(a.x);
        gf${l}[u] = l2lSigmoid(a.y);
        gg${l}[u] = l2lTanh(a.z);
        go${l}[u] = l2lSigmoid(a.w);
        cp${l}[u] = C${l}[u * n + index];
        let c2 = gf${l}[u] * cp${l}[u] + gi${l}[u] * gg${l}[u];
        tc${l}[u] = l2lTanh(c2);
        hn${l}[u] = go${l}[u] * tc${l}[u];`);
  });
  const top = `hn${layers.length - 1}`;
  code += `${outputPreActivationCode(H, outputOffset, top)}
      var dd = DY[index] * uniforms.scale;${outputTanh ? `
      let td = l2lTanh(d);
      dd = dd * (1.0 - td * td);` : ''}
      setOutputAtIndex(${rows.dOut} * n + index, dd);
      for (var u = 0; u < ${H}; u++) { setOutputAtIndex((${rows.zTop} + u) * n + index, ${top}[u]); }
      setOutputAtIndex(${rows.zTop + H} * n + index, 1.0);
      var dh : array<f32, ${H}>;
      for (var u = 0; u < ${H}; u++) { dh[u] = dd * W[${outputOffset} + u]; }
      var da : array<vec4<f32>, ${H}>;${E > 0 ? `
      var dyIn : array<f32, ${E}>;` : ''}`;
  for (let l = layers.length - 1; l >= 0; l--) {
    const { X, Z, offset, out } = layers[l]!; // out: the step's h' rows in dy; c' follows
    code += `
      for (var u = 0; u < ${H} + uniforms.zero; u++) {
        let dhu = dh[u] + DY[(${out} + u) * n + index];
        let tcu = tc${l}[u];
        let dcu = DY[(${out + H} + u) * n + index] + dhu * go${l}[u] * (1.0 - tcu * tcu);
        let iu = gi${l}[u];
        let fu = gf${l}[u];
        let gu = gg${l}[u];
        let ou = go${l}[u];
        da[u] = vec4<f32>(dcu * gu * (iu * (1.0 - iu)), dcu * cp${l}[u] * (fu * (1.0 - fu)), dcu * iu * (1.0 - gu * gu), dhu * tcu * (ou * (1.0 - ou)));
        setOutputAtIndex((${rows.dc[l]} + u) * n + index, dcu * fu);
        setOutputAtIndex((${rows.da[l]} + u) * n + index, da[u].x);
        setOutputAtIndex((${rows.da[l]! + H} + u) * n + index, da[u].y);
        setOutputAtIndex((${rows.da[l]! + 2 * H} + u) * n + index, da[u].z);
        setOutputAtIndex((${rows.da[l]! + 3 * H} + u) * n + index, da[u].w);
      }
      for (var k = 0; k < ${Z}; k++) {
        setOutputAtIndex((${rows.z[l]} + k) * n + index, z${l}[k]);
      }
      for (var k = 0; k < ${X + H} + uniforms.zero; k++) {
        var s = 0.0;
        for (var u = 0; u < ${H} + uniforms.zero; u++) {
          let r = ${offset} + u * ${Z} + k;
          s = s + dot(vec4<f32>(W[r], W[r + ${H * Z}], W[r + ${2 * H * Z}], W[r + ${3 * H * Z}]), da[u]);
        }
        if (k < ${X}) {${l > 0 ? `
          dh[k] = s;` : E > 0 ? `
          dyIn[k] = s;` : ''}
        } else {
          setOutputAtIndex((${rows.dh[l]} + k - ${X}) * n + index, s);
        }
      }`;
  }
  if (E > 0) {
    // The input layer: ELU'(a) = 1 where y ≥ 0, else y + 1 (tfjs's EluGrad); its z = [x; 1].
    code += `
      for (var e = 0; e < ${E}; e++) {
        setOutputAtIndex((${rows.daIn} + e) * n + index, select(dyIn[e] * (y[e] + 1.0), dyIn[e], y[e] >= 0.0));
      }
      for (var f = 0; f < ${F}; f++) { setOutputAtIndex((${rows.zIn} + f) * n + index, x[f]); }
      setOutputAtIndex(${rows.zIn + F} * n + index, 1.0);`;
  }
  code += `
    }
  }`;
  return code;
}

/** What this file uses of tfjs-webgpu's backend (a public method of WebGPUBackend). */
interface WebGpuBackend {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: Array<{ type: string; data: number[] }>): tf.TensorInfo;
}

/**
 * A flat elementwise program over `outputShape` with tfjs-webgpu's program fields; `uniforms` declares the
 * program's own (WGSL struct fields), whose values go to runWebGPUProgram in the same order.
 */
function program(key: string, variableNames: string[], outputShape: number[], code: string, uniforms?: string, invocations?: number): object {
  const size = outputShape.reduce((a, b) => a * b, 1);
  return {
    variableNames,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    // One invocation per output element, unless the program writes several each (`invocations`).
    dispatch: [Math.ceil((invocations ?? size) / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    ...(uniforms && { uniforms }),
    getUserCode: () => code,
  };
}

/** LSTM_STACK_STEP or its gradient (`grad`, with dy among the inputs): G, W, then each layer's H and C (and DY). */
function runStackStep(backend: unknown, inputs: tf.NamedTensorInfoMap, attrs: tf.NamedAttrMap | undefined, grad: boolean): tf.TensorInfo {
  const { g, w, dy, ...state } = inputs as Record<string, tf.TensorInfo>;
  const { spec, constants } = attrs as unknown as { spec: LstmStackStepSpec; constants: LstmStackStepConstants };
  const n = g!.shape[1]!;
  const names = ['G', 'W'];
  const tensors = [g!, w!];
  for (let l = 0; l < spec.layers; l++) {
    names.push(`H${l}`, `C${l}`);
    tensors.push(state[`h${l}`]!, state[`c${l}`]!);
  }
  if (grad) {
    names.push('DY');
    tensors.push(dy!);
  }
  const key = `l2l_lstm_stack_step_${grad ? 'grad_' : ''}${spec.hidden}_${spec.layers}_${spec.features}_${spec.inputUnits}_${spec.outputTanh}`;
  const rows = grad ? lstmStackStepGradRows(spec).rows : lstmStackLayout(spec).stepRows;
  const p = program(key, names, [rows, n], grad ? lstmStackStepGradCode(spec) : lstmStackStepCode(spec), STEP_UNIFORMS, n);
  const uniforms = stepUniforms(constants).map((v) => ({ type: 'float32', data: [v] }));
  return (backend as WebGpuBackend).runWebGPUProgram(p, tensors, 'float32', [...uniforms, { type: 'int32', data: [0] }]);
}

let registered = false;

/** Registers the kernels for the webgpu backend (once per process; another copy of this module may have). */
export function registerWebGpuKernels(): void {
  if (registered) return;
  registered = true;
  const run = (backend: unknown, ...args: Parameters<WebGpuBackend['runWebGPUProgram']>) => (backend as WebGpuBackend).runWebGPUProgram(...args);
  const kernels: Record<string, tf.KernelFunc> = {
    [LSTM_GATES]: ({ inputs, backend }) => {
      const { a, c } = inputs as { a: tf.TensorInfo; c: tf.TensorInfo };
      const [hidden, n] = c.shape as [number, number];
      return run(backend, program('l2l_lstm_gates', ['A', 'C'], [2 * hidden, n], FORWARD), [a, c], 'float32');
    },
    [LSTM_GATES_GRAD]: ({ inputs, backend }) => {
      const { a, c, dy } = inputs as { a: tf.TensorInfo; c: tf.TensorInfo; dy: tf.TensorInfo };
      const [hidden, n] = c.shape as [number, number];
      return run(backend, program('l2l_lstm_gates_grad', ['A', 'C', 'DY'], [5 * hidden, n], BACKWARD), [a, c, dy], 'float32');
    },
    [CHUNK_COLUMNS]: ({ inputs, attrs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const { chunk } = attrs as unknown as { chunk: number };
      const [rows, n] = x.shape as [number, number];
      const p = program('l2l_chunk_columns', ['X'], [Math.ceil(n / chunk), rows, chunk], CHUNK_COLUMNS_CODE, 'chunk : i32,');
      return run(backend, p, [x], 'float32', [{ type: 'int32', data: [chunk] }]);
    },
    [LOG_AND_SIGN]: ({ inputs, attrs, backend }) => {
      const { g } = inputs as { g: tf.TensorInfo };
      const { k } = attrs as unknown as { k: number };
      const p = program('l2l_log_and_sign', ['G'], [2, g.shape[1]!], LOG_AND_SIGN_CODE, 'k : f32, threshold : f32, ek : f32,');
      return run(backend, p, [g], 'float32', logAndSignConstants(k).map((v) => ({ type: 'float32', data: [v] })));
    },
    [LSTM_STACK_STEP]: ({ inputs, attrs, backend }) => runStackStep(backend, inputs, attrs, false),
    [LSTM_STACK_STEP_GRAD]: ({ inputs, attrs, backend }) => runStackStep(backend, inputs, attrs, true),
  };
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    if (!tf.getKernel(kernelName, 'webgpu')) tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
  }
}

/** Columns per chunk in sumOfOuterProducts, and the coordinates from which it chunks. */
export const OUTER_CHUNK = 1024;
export const OUTER_CHUNKED_FROM = 65_536;

/**
 * a·zᵀ ([R, K]) for a [R, N] and z [K, N]: a weight's gradient, summed over N coordinates. For a few outputs
 * and a long sum tfjs-webgpu splits the sum over workgroups that add into the output atomically (MatMulSplitK):
 * 63 % of the GPU's time in a meta-iteration at 1,000,000 coordinates on an H200 (`webgpu-programs.js --gpu-time`,
 * bench/results.md), and the order of the additions varies from run to run. From OUTER_CHUNKED_FROM
 * coordinates this sums each chunk of OUTER_CHUNK columns with one batched product and then the chunks (zero
 * columns pad the last): more programs, a fixed order. Below, or off webgpu, it is tf.matMul. Not
 * differentiable on webgpu from that size (it serves gradients).
 */
export function sumOfOuterProducts(a: tf.Tensor2D, z: tf.Tensor2D): tf.Tensor2D {
  const n = a.shape[1];
  if (n < OUTER_CHUNKED_FROM || !webGpuKernelsHere()) return tf.matMul(a, z, false, true);
  registerWebGpuKernels();
  return tf.tidy(() => {
    // [rows, N] → [chunks, rows, OUTER_CHUNK], one program each (no gradient: this runs inside gradients).
    const split = (t: tf.Tensor2D) => tf.engine().runKernel(CHUNK_COLUMNS, { x: t }, { chunk: OUTER_CHUNK } as unknown as tf.NamedAttrMap) as tf.Tensor3D;
    return tf.sum(tf.matMul(split(a), split(z), false, true), 0) as tf.Tensor2D;
  });
}

/** Whether the programs here run: on tfjs's webgpu backend. */
export function webGpuKernelsHere(): boolean {
  return tf.getBackend() === 'webgpu';
}

/**
 * One update of an LSTM-stack optimizer on webgpu as one program (LSTM_STACK_STEP), for steps no gradient is
 * taken of: `g` the gradient row [1, N] (Adam features: [g; m; v], [3, N]), `phi` the kernels flattened and
 * concatenated (input layer, LSTM layers, output), `state` each layer's h and c ([H, N]). Returns [update; m'; v'
 * (Adam features); h'_0; c'_0; ...]; not differentiable.
 */
export function lstmStackStep(
  g: tf.Tensor2D,
  phi: tf.Tensor1D,
  state: ReadonlyArray<{ h: tf.Tensor2D; c: tf.Tensor2D }>,
  spec: LstmStackStepSpec,
  constants: LstmStackStepConstants,
): tf.Tensor2D {
  return runStackKernel(LSTM_STACK_STEP, { g, w: phi }, state, spec, constants);
}

/**
 * LSTM_STACK_STEP_GRAD: the parts of lstmStackStep's first-order gradient (rows as lstmStackStepGradRows says)
 * for its inputs and `dy`, the adjoint of its output.
 */
export function lstmStackStepGrad(
  g: tf.Tensor2D,
  phi: tf.Tensor1D,
  state: ReadonlyArray<{ h: tf.Tensor2D; c: tf.Tensor2D }>,
  dy: tf.Tensor2D,
  spec: LstmStackStepSpec,
  constants: LstmStackStepConstants,
): tf.Tensor2D {
  return runStackKernel(LSTM_STACK_STEP_GRAD, { g, w: phi, dy }, state, spec, constants);
}

/** LSTM_STACK_STEP or its gradient on `inputs` and each layer's h and c, after checking their shapes' sense. */
function runStackKernel(
  name: string,
  inputs: { g: tf.Tensor2D; w: tf.Tensor1D; dy?: tf.Tensor2D },
  state: ReadonlyArray<{ h: tf.Tensor2D; c: tf.Tensor2D }>,
  spec: LstmStackStepSpec,
  constants: LstmStackStepConstants,
): tf.Tensor2D {
  const { layers } = spec;
  if (layers < 1 || layers > LSTM_STACK_STEP_MAX_LAYERS || state.length !== layers) {
    throw new Error(`lstmStackStep: 1 to ${LSTM_STACK_STEP_MAX_LAYERS} layers with a state each, got ${layers} and ${state.length}`);
  }
  if (inputs.g.shape[0] !== lstmStackLayout(spec).head) throw new Error(`lstmStackStep: g is [${inputs.g.shape.join(', ')}] for features "${spec.features}"`);
  registerWebGpuKernels();
  const all: Record<string, tf.Tensor> = { ...inputs };
  state.forEach(({ h, c }, l) => {
    all[`h${l}`] = h;
    all[`c${l}`] = c;
  });
  return tf.engine().runKernel(name, all, { spec, constants } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/** [h'; c'] from a and c (see LSTM_GATES). */
export function lstmGates(a: tf.Tensor2D, c: tf.Tensor2D): tf.Tensor2D {
  registerWebGpuKernels();
  return tf.engine().runKernel(LSTM_GATES, { a, c }) as tf.Tensor2D;
}

/** [da; dc] from a, c and dy (see LSTM_GATES_GRAD). */
export function lstmGatesGrad(a: tf.Tensor2D, c: tf.Tensor2D, dy: tf.Tensor2D): tf.Tensor2D {
  registerWebGpuKernels();
  return tf.engine().runKernel(LSTM_GATES_GRAD, { a, c, dy }) as tf.Tensor2D;
}

/**
 * logAndSign features of a gradient row (see LOG_AND_SIGN). Differentiable as preprocess.ts's ops are: ∂/∂g is
 * 1/(k·g) for the log part and 0 for the sign where |g| ≥ e^−k, else 0 and e^k (what second derivatives need);
 * NaN where g is NaN.
 */
export const logAndSign = (g: tf.Tensor2D, k: number): tf.Tensor2D =>
  tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    registerWebGpuKernels();
    save([x]);
    return {
      value: tf.engine().runKernel(LOG_AND_SIGN, { g: x }, { k } as unknown as tf.NamedAttrMap) as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) =>
        tf.tidy(() => {
          const big = tf.greaterEqual(tf.abs(xs!), Math.exp(-k));
          const [dLog, dSign] = tf.split(dy, 2, 0);
          const d = tf.add(tf.where(big, tf.div(dLog!, tf.mul(xs!, k)), tf.zerosLike(xs!)), tf.where(big, tf.zerosLike(xs!), tf.mul(dSign!, Math.exp(k))));
          // NaN in, NaN out, as the taped ops give.
          return tf.where(tf.isNaN(xs!), xs!, d);
        }),
    };
  })(g) as tf.Tensor2D;
