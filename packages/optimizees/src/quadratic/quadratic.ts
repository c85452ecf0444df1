/**
 * `quadratic`: the synthetic optimizee of Andrychowicz et al. (2016, §3.1), f(θ) = ‖Wθ − y‖² with a 10×10
 * matrix W and a 10-vector y drawn per task. As in DeepMind's code (learning-to-learn, problems.py
 * `quadratic`), one task holds a batch of independent quadratics and its loss is their mean:
 * `reduce_mean(reduce_sum((Wθ − y)², 1))`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { defineComponent, runWhereReadable, scalarStep, deriveSeed, isSplit, validateWithSchema, Rng, UserError, type Batch, type JsonSchema, type NamedTensors, type Split, type Task, type TaskConfig, type TaskFamily } from '@l2l/core';

export const QUADRATIC_TYPE = 'quadratic';

export type QuadraticDistribution = 'normal' | 'uniform';

export interface QuadraticOptions {
  dims: number;
  batch: number;
  initScale: number;
  distribution: QuadraticDistribution;
}

export const quadraticSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dims: { type: 'integer', minimum: 1, default: 10, description: 'Dimension of θ and y; W is dims × dims (the paper: 10).' },
    batch: {
      type: 'integer',
      minimum: 1,
      default: 128,
      description: 'Independent quadratics per task, each with its own W and y; the loss is their mean (DeepMind\'s code: 128; 1: a single quadratic).',
    },
    initScale: {
      type: 'number',
      minimum: 0,
      default: 1,
      description: 'Standard deviation of the initial θ, drawn from N(0, initScale²) (DeepMind\'s code uses 0.01; 0 starts at the origin).',
    },
    distribution: {
      enum: ['normal', 'uniform'],
      default: 'normal',
      description: 'How W and y are drawn: "normal", i.i.d. N(0, 1) as the paper states; "uniform", i.i.d. U[0, 1) as DeepMind\'s code does.',
    },
  },
};

/** The quadratic batch of one task: W [batch, dims, dims] and y [batch, dims] as plain arrays (row-major). */
export function drawQuadratic(seed: number, options: Pick<QuadraticOptions, 'dims' | 'batch' | 'distribution'>): { w: Float32Array; y: Float32Array } {
  const { dims, batch, distribution } = options;
  const rng = new Rng(seed);
  const draw = (n: number) => (distribution === 'uniform' ? rng.uniforms(n) : rng.normals(n));
  const w = draw(batch * dims * dims);
  const y = draw(batch * dims);
  return { w, y };
}

/**
 * One task: `batch` quadratics ‖W_b θ_b − y_b‖², parameters `x` [batch, dims], loss the mean over b.
 *
 * The loss is a `tf.customGrad` whose gradient is (2/batch)·(Hθ − c)·dy with H = WᵀW and c = Wᵀy precomputed
 * at build: one batched matmul per gradient and no transposed multiplies (tfjs's own BatchMatMul gradient
 * multiplies by transposes; at the default size loss + gradient measured 1.2–2.5× faster this way on cpu and
 * wasm). The gradient is computed from θ
 * itself, not from values saved in the forward pass, so it stays differentiable: second derivatives
 * (2/batch)·H are exact. Near a minimum Hθ − c cancels, so the gradient's float32 rounding is of order
 * 1e-7·‖H‖‖θ‖, irrelevant above losses of ~1e-8.
 */
export class QuadraticTask implements Task {
  readonly dims: number;
  /** Number of independent quadratics (the `batch` option). */
  readonly quadratics: number;
  /** W [batch, dims, dims]. */
  readonly w: tf.Tensor3D;
  /** y [batch, dims]. */
  readonly y: tf.Tensor2D;
  private readonly h: tf.Tensor3D;
  private readonly c: tf.Tensor2D;
  private readonly lossOf: (x: tf.Tensor) => tf.Scalar;

  constructor(
    readonly config: TaskConfig,
    private readonly options: QuadraticOptions,
  ) {
    const { dims, batch } = options;
    this.dims = dims;
    this.quadratics = batch;
    const drawn = drawQuadratic(config.seed, options);
    const [w, y, h, c] = tf.tidy(() => {
      const w = tf.tensor3d(drawn.w, [batch, dims, dims]);
      const y = tf.tensor2d(drawn.y, [batch, dims]);
      const wt = tf.transpose(w, [0, 2, 1]);
      const h = tf.matMul(wt, w);
      const c = tf.reshape(tf.matMul(wt, tf.reshape(y, [batch, dims, 1])), [batch, dims]);
      return [w, y, h, c] as [tf.Tensor3D, tf.Tensor2D, tf.Tensor3D, tf.Tensor2D];
    });
    this.w = w;
    this.y = y;
    this.h = h;
    this.c = c;

    const scale = 2 / batch;
    this.lossOf = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [x, save] = inputs as [tf.Tensor, tf.GradSaveFunc];
      // Saved, not closed over: x may be a temporary (c ⊙ θ under random scaling) freed after the forward pass.
      save([x]);
      const r = tf.sub(tf.reshape(tf.matMul(this.w, tf.reshape(x, [batch, dims, 1])), [batch, dims]), this.y);
      const value = tf.div(tf.sum(tf.square(r)), batch) as tf.Scalar;
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.mul(tf.sub(tf.reshape(tf.matMul(this.h, tf.reshape(saved[0]!, [batch, dims, 1])), [batch, dims]), this.c), tf.mul(dy, scale));
      return { value, gradFunc };
    }) as (x: tf.Tensor) => tf.Scalar;
  }

  /** θ₀ [batch, dims] from N(0, initScale²), drawn from `Rng(seed)`: the same seed gives the same θ₀ in every task. */
  initParams(seed: number): NamedTensors {
    const { batch, dims, initScale } = this.options;
    return { x: tf.tensor2d(new Rng(seed).normals(batch * dims, 0, initScale), [batch, dims]) };
  }

  /** No data: the task is deterministic. */
  batch(): Batch {
    return {};
  }

  /** The loss itself: a deterministic task has no minibatches to average over. */
  fullLoss(params: NamedTensors): number | Promise<number> {
    return runWhereReadable(scalarStep(this.loss(params)));
  }

  /** mean over b of ‖W_b θ_b − y_b‖², for θ = `params.x` [batch, dims]. */
  loss(params: NamedTensors): tf.Scalar {
    const x = params.x;
    if (!x) throw new Error(`${QUADRATIC_TYPE} loss needs a parameter "x" (got: ${Object.keys(params).join(', ') || 'none'})`);
    if (x.rank !== 2 || x.shape[0] !== this.quadratics || x.shape[1] !== this.dims) {
      throw new Error(`${QUADRATIC_TYPE} loss: parameter "x" must have shape [${this.quadratics}, ${this.dims}], got [${x.shape}]`);
    }
    return this.lossOf(x);
  }

  dispose(): void {
    tf.dispose([this.w, this.y, this.h, this.c]);
  }
}

/**
 * The family. `sample(seed, split)` returns `{family: "quadratic", split, seed}` with the task seed derived
 * as `deriveSeed(seed, "quadratic", split)` and then made ≡ 0 or 2 (mod 4) for train, ≡ 1 (mod 4) for
 * validation and ≡ 3 (mod 4) for test, so tasks of different splits never share a seed, hence never share W
 * and y. (Train seeds are the even ones they were when there were only two splits.) `build` draws W, then y, from `Rng(config.seed)`.
 */
export class QuadraticFamily implements TaskFamily {
  readonly type = QUADRATIC_TYPE;

  constructor(readonly options: QuadraticOptions) {}

  sample(seed: number, split: Split): TaskConfig {
    if (!isSplit(split)) throw new Error(`split must be "train", "validation" or "test", got ${JSON.stringify(split)}`);
    return { family: QUADRATIC_TYPE, split, seed: quadraticTaskSeed(seed, split) };
  }

  build(config: TaskConfig): QuadraticTask {
    if (config.family !== QUADRATIC_TYPE) throw new UserError(`task config is for family "${config.family}", not "${QUADRATIC_TYPE}"`);
    if (!isSplit(config.split)) {
      throw new UserError(`${QUADRATIC_TYPE} task config: split must be "train", "validation" or "test", got ${JSON.stringify(config.split)}`);
    }
    if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > 0xffffffff) {
      throw new UserError(`${QUADRATIC_TYPE} task config: seed must be an integer in [0, 2^32), got ${JSON.stringify(config.seed)}`);
    }
    return new QuadraticTask(config, this.options);
  }
}

/** The task seed `sample` uses: a hash of the seed and split, even for train, 1 mod 4 for validation, 3 mod 4 for test. */
export function quadraticTaskSeed(seed: number, split: Split): number {
  const h = deriveSeed(seed, QUADRATIC_TYPE, split);
  return (split === 'train' ? h & ~1 : split === 'validation' ? (h & ~3) | 1 : h | 3) >>> 0;
}

export const quadratic = defineComponent<QuadraticOptions>()({
  kind: 'optimizee',
  type: QUADRATIC_TYPE,
  description: 'Random quadratics f(θ) = ‖Wθ − y‖², W and y drawn per task; default a batch of 128 with 10 dimensions (Andrychowicz et al. 2016)',
  schema: quadraticSchema,
  create: (options) => new QuadraticFamily(options),
  // W drawn into an array, as a tensor, transposed and its product H (batch × dims² each); a step's few batch × dims values.
  estimate: ({ dims, batch }) => ({ coordinates: batch * dims, bytes: 4 * 4 * batch * dims * dims, stepBytes: 4 * 6 * batch * dims }),
});

/** A family from partial options (validated, defaults applied), without a registry: for scripts and tests. */
export function createQuadraticFamily(options: Partial<QuadraticOptions> = {}): QuadraticFamily {
  return new QuadraticFamily(validateWithSchema<QuadraticOptions>(quadraticSchema, options, `optimizee "${QUADRATIC_TYPE}"`));
}
