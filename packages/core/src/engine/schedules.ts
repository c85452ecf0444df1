import type { ComponentConfig } from '../contracts/json';
import type { LearningRateSchedule } from '../contracts/schedule';
import { UserError } from '../errors';

/*
 * The built-in learning-rate schedules of the outer loop (`training.learningRateSchedule`, contracts/schedule.ts):
 * factors of the outer optimizer's learning rate by outer step, as optax's and Keras's schedules shape them.
 * The registry's `schedule` components (pipeline/core-components.ts) build these.
 */

/** Options of `cosine` and `linear`: a linear warm-up, then a decay to `final`× over `decaySteps`. */
export interface DecayOptions {
  /** Steps of linear warm-up: the factor is (s + 1)/warmupSteps at step s < warmupSteps; 0: none. */
  warmupSteps: number;
  /** Steps of the decay after the warm-up; null: to the end of the run (its total − warmupSteps). */
  decaySteps: number | null;
  /** The factor at the end of the decay, and after it. */
  final: number;
}

export interface ExponentialOptions {
  /** The factor's ratio per `every` steps (after the warm-up). */
  rate: number;
  every: number;
  /** Multiply by `rate` at whole multiples of `every` only, not continuously. */
  staircase: boolean;
  warmupSteps: number;
}

export interface StepsOptions {
  /** The steps from which one more factor of `rate` applies (any order). */
  boundaries: number[];
  rate: number;
}

export const DECAY_DEFAULTS: DecayOptions = { warmupSteps: 0, decaySteps: null, final: 0 };
export const EXPONENTIAL_DEFAULTS: ExponentialOptions = { rate: 0.5, every: 1000, staircase: false, warmupSteps: 0 };
export const STEPS_DEFAULTS: StepsOptions = { boundaries: [], rate: 0.1 };

const count = (n: number) => Number.isInteger(n) && n >= 0;

/** Plain-words problems of a schedule's options (the registry's schemas say the same; this guards programmatic use). */
function problems(type: string, o: Record<string, unknown>): string[] {
  const p: string[] = [];
  const num = (k: string) => o[k] as number;
  if ('warmupSteps' in o && !count(num('warmupSteps'))) p.push(`warmupSteps must be an integer ≥ 0, got ${String(o.warmupSteps)}`);
  if (type === 'cosine' || type === 'linear') {
    if (o.decaySteps !== null && !(count(num('decaySteps')) && num('decaySteps') >= 1)) p.push(`decaySteps must be an integer ≥ 1 or null, got ${String(o.decaySteps)}`);
    if (!(num('final') >= 0 && num('final') <= 1)) p.push(`final must be a number in [0, 1], got ${String(o.final)}`);
  }
  if (type === 'exponential') {
    if (!(num('rate') > 0 && num('rate') <= 1)) p.push(`rate must be a number in (0, 1], got ${String(o.rate)}`);
    if (!(count(num('every')) && num('every') >= 1)) p.push(`every must be an integer ≥ 1, got ${String(o.every)}`);
    if (typeof o.staircase !== 'boolean') p.push(`staircase must be true or false, got ${String(o.staircase)}`);
  }
  if (type === 'steps') {
    if (!(num('rate') > 0 && Number.isFinite(num('rate')))) p.push(`rate must be a finite number > 0, got ${String(o.rate)}`);
    const b = o.boundaries as unknown;
    if (!Array.isArray(b) || !b.every((x) => count(x as number) && (x as number) >= 1)) p.push(`boundaries must be a list of integers ≥ 1, got ${JSON.stringify(b)}`);
  }
  return p;
}

/** The factor during a warm-up of `w` steps, or null after it. */
function warmup(step: number, w: number): number | null {
  return step < w ? (step + 1) / w : null;
}

/** Fraction of the decay done at `step`: 0 at its start, 1 at its end and after. */
function progress(step: number, total: number, o: DecayOptions): number {
  const length = o.decaySteps ?? Math.max(1, total - o.warmupSteps);
  return Math.min(1, Math.max(0, step - o.warmupSteps) / length);
}

const decayName = (kind: string, o: DecayOptions) =>
  `${kind}(${o.warmupSteps ? `warm-up ${o.warmupSteps}, ` : ''}to ${o.final}× ${o.decaySteps === null ? 'at the end of the run' : `over ${o.decaySteps} steps`})`;

/** The factor 1 at every step: the learning rate as given (what an absent schedule means). */
export function constantSchedule(): LearningRateSchedule {
  return { name: 'constant', factor: () => 1 };
}

/** Half a cosine from 1 down to `final` after a linear warm-up (optax's warmup_cosine_decay_schedule, SGDR's shape). */
export function cosineSchedule(options: Partial<DecayOptions> = {}): LearningRateSchedule {
  const o = resolve<DecayOptions>('cosine', DECAY_DEFAULTS, options);
  return {
    name: decayName('cosine', o),
    factor: (step, total) => warmup(step, o.warmupSteps) ?? o.final + ((1 - o.final) * (1 + Math.cos(Math.PI * progress(step, total, o)))) / 2,
  };
}

/** A straight line from 1 down to `final` after a linear warm-up. */
export function linearSchedule(options: Partial<DecayOptions> = {}): LearningRateSchedule {
  const o = resolve<DecayOptions>('linear', DECAY_DEFAULTS, options);
  return { name: decayName('linear', o), factor: (step, total) => warmup(step, o.warmupSteps) ?? 1 - (1 - o.final) * progress(step, total, o) };
}

/** rate^((s − warmupSteps)/every) after a linear warm-up (Keras's ExponentialDecay); staircase: whole powers only. */
export function exponentialSchedule(options: Partial<ExponentialOptions> = {}): LearningRateSchedule {
  const o = resolve<ExponentialOptions>('exponential', EXPONENTIAL_DEFAULTS, options);
  return {
    name: `exponential(${o.warmupSteps ? `warm-up ${o.warmupSteps}, ` : ''}×${o.rate} every ${o.every} steps${o.staircase ? ', staircase' : ''})`,
    factor: (step) => {
      const w = warmup(step, o.warmupSteps);
      if (w !== null) return w;
      const e = (step - o.warmupSteps) / o.every;
      return o.rate ** (o.staircase ? Math.floor(e) : e);
    },
  };
}

/** Piecewise constant: one more factor of `rate` from each boundary on (step decay). */
export function stepsSchedule(options: Partial<StepsOptions> = {}): LearningRateSchedule {
  const o = resolve<StepsOptions>('steps', STEPS_DEFAULTS, options);
  const boundaries = [...o.boundaries].sort((a, b) => a - b);
  return {
    name: `steps(×${o.rate} from step${boundaries.length === 1 ? '' : 's'} ${boundaries.join(', ') || '(none)'})`,
    factor: (step) => o.rate ** boundaries.filter((b) => step >= b).length,
  };
}

function resolve<O>(type: string, defaults: O, options: Partial<O>): O {
  const o = { ...defaults, ...options } as O;
  const known = Object.keys(defaults as object);
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  const p = [...unknown.map((k) => `unknown option "${k}" (known: ${known.join(', ') || 'none'})`), ...problems(type, o as Record<string, unknown>)];
  if (p.length) throw new UserError(`training.learningRateSchedule (schedule "${type}"): ${p.join('; ')}`);
  return o;
}

/** The built-in schedules by type. */
export const BUILTIN_SCHEDULES = {
  constant: (options: Record<string, never> = {}) => (resolve('constant', {}, options), constantSchedule()),
  cosine: cosineSchedule,
  linear: linearSchedule,
  exponential: exponentialSchedule,
  steps: stepsSchedule,
} as const;

/** A built-in schedule from its `{type, options}` (a plugin's schedule is built by the pipeline, from the registry). */
export function builtinSchedule(config: ComponentConfig): LearningRateSchedule {
  if (!Object.hasOwn(BUILTIN_SCHEDULES, config.type)) {
    throw new UserError(`training.learningRateSchedule: unknown schedule type "${config.type}" (built in: ${Object.keys(BUILTIN_SCHEDULES).join(', ')}; a plugin's schedule is built by the pipeline)`);
  }
  return (BUILTIN_SCHEDULES[config.type as keyof typeof BUILTIN_SCHEDULES] as (o: unknown) => LearningRateSchedule)(config.options ?? {});
}

/** A schedule's factor, checked: a plugin's that returns NaN, ∞ or < 0 stops training with its name. */
export function scheduleFactor(schedule: LearningRateSchedule, step: number, total: number): number {
  const f = schedule.factor(step, total);
  if (!(f >= 0) || !Number.isFinite(f)) throw new UserError(`training.learningRateSchedule "${schedule.name}": factor ${f} at outer step ${step} (must be finite and ≥ 0)`);
  return f;
}
